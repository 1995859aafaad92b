"""Alarms: the engine's live view, one alarm's timeline and decision records, and turning a
test call into a real alarm."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

from api_models import Accepted, Alarm, AlarmDetail, Role
from gateway.api.deps import AuthDep, InboxDep, LiveDep, QueriesDep
from gateway.api.errors import errors
from gateway.api.params import AlarmPath
from gateway.api.ports import DatabaseUnavailable
from gateway.api.security import OPERATIONS, allow, client_address
from gateway.auth.store import Session

router = APIRouter(tags=["alarms"])


def involves(alarm: Alarm, scheme: str | None, carer_id: str | None) -> bool:
    """Has this carer had anything to do with this alarm (offered, tried, holding it)?"""
    if carer_id is None or alarm.scheme != scheme:
        return False
    people = {o.carer_id for o in alarm.offers}
    people.update(alarm.tried, alarm.accepted_by, alarm.arrived_by)
    return carer_id in people


@router.get("/api/v1/alarms", dependencies=[allow(*OPERATIONS)], responses=errors(401, 403))
async def alarms(
    live: LiveDep, open_only: Annotated[bool, Query(alias="open")] = True
) -> list[Alarm]:
    """Alarms held by the engine now (live, from memory), most urgent and oldest first."""
    return live.alarms(open_only)


@router.get("/api/v1/alarms/{alarm_id}", responses=errors(401, 403, 404, 503))
async def alarm_detail(
    alarm_id: AlarmPath,
    live: LiveDep,
    queries: QueriesDep,
    me: Annotated[Session, allow(*OPERATIONS, Role.CARER)],
) -> AlarmDetail:
    """One alarm: live state, its timeline and every routing decision (from TimescaleDB).
    A carer sees only an alarm they were offered or hold, with their own steps only."""
    a = live.alarm(str(alarm_id))
    if me.role is Role.CARER and (a is None or not involves(a, me.scheme, me.carer_id)):
        raise HTTPException(403, "this alarm was not offered to you and you do not hold it")
    try:
        timeline, decisions = await queries.alarm_history(str(alarm_id))
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc
    if a is None and not timeline:
        raise HTTPException(404, f"no alarm {alarm_id}")
    if me.role is Role.CARER:
        # Other carers' steps and the routing comparison (everyone's travel times) are the
        # control room's business, not a colleague's.
        mine = [t for t in timeline if t.carer_id in (None, me.carer_id)]
        return AlarmDetail(alarm=a, timeline=tuple(mine), decisions=())
    return AlarmDetail(alarm=a, timeline=tuple(timeline), decisions=tuple(decisions))


@router.post(
    "/api/v1/alarms/{alarm_id}/promote", status_code=202, responses=errors(401, 403, 404, 409)
)
async def promote(
    alarm_id: AlarmPath,
    live: LiveDep,
    inbox: InboxDep,
    auth: AuthDep,
    request: Request,
    me: Annotated[Session, allow(*OPERATIONS)],
) -> Accepted:
    """Turn a test call (from a device in a test window) into a real alarm: it is raised and
    offered at once. 404 for an unknown alarm, 409 for one that is not a test call."""
    a = live.alarm(str(alarm_id))
    if a is None:
        raise HTTPException(404, f"no alarm {alarm_id}")
    if a.state != "test_call":
        raise HTTPException(409, f"alarm {alarm_id} is {a.state}, not a test call")
    await inbox.submit_control(
        a.scheme, {"op": "promote", "alarm_id": str(alarm_id), "by": me.username}
    )
    await auth.audit.arecord(
        "alarm.promote",
        username=me.username,
        role=me.role.value,
        target=str(alarm_id),
        address=client_address(request),
        detail={"scheme": a.scheme},
    )
    return Accepted()
