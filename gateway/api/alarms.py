"""Alarms: the engine's live view, and one alarm's timeline and decision records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api_models import Alarm, AlarmDetail, Role
from gateway.api.deps import LiveDep, QueriesDep
from gateway.api.ports import DatabaseUnavailable, NotAnId
from gateway.api.security import OPERATIONS, allow
from gateway.auth.store import Session

router = APIRouter(tags=["alarms"])


def involves(alarm: Alarm, scheme: str | None, carer_id: str | None) -> bool:
    """Has this carer had anything to do with this alarm (offered, tried, holding it)?"""
    if carer_id is None or alarm.scheme != scheme:
        return False
    people = {o.carer_id for o in alarm.offers}
    people.update(alarm.tried, alarm.accepted_by, alarm.arrived_by)
    return carer_id in people


@router.get("/api/v1/alarms", dependencies=[allow(*OPERATIONS)])
async def alarms(
    live: LiveDep, open_only: Annotated[bool, Query(alias="open")] = True
) -> list[Alarm]:
    """Alarms held by the engine now (live, from memory), most urgent and oldest first."""
    return live.alarms(open_only)


@router.get("/api/v1/alarms/{alarm_id}")
async def alarm_detail(
    alarm_id: str,
    live: LiveDep,
    queries: QueriesDep,
    me: Annotated[Session, allow(*OPERATIONS, Role.CARER)],
) -> AlarmDetail:
    """One alarm: live state, its timeline and every routing decision (from TimescaleDB).
    A carer sees only an alarm they were offered or hold, with their own steps only."""
    a = live.alarm(alarm_id)
    if me.role is Role.CARER and (a is None or not involves(a, me.scheme, me.carer_id)):
        raise HTTPException(403, "this alarm was not offered to you and you do not hold it")
    try:
        timeline, decisions = await queries.alarm_history(alarm_id)
    except NotAnId as exc:
        raise HTTPException(422, f"not an alarm id: {alarm_id!r}") from exc
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc
    if a is None and not timeline:
        raise HTTPException(404, f"no alarm {alarm_id!r}")
    if me.role is Role.CARER:
        # Other carers' steps and the routing comparison (everyone's travel times) are the
        # control room's business, not a colleague's.
        mine = [t for t in timeline if t.carer_id in (None, me.carer_id)]
        return AlarmDetail(alarm=a, timeline=tuple(mine), decisions=())
    return AlarmDetail(alarm=a, timeline=tuple(timeline), decisions=tuple(decisions))
