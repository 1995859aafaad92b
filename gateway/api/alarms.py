"""Alarms: the engine's live view, and one alarm's timeline and decision records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from api_models import Accepted, Alarm, AlarmDetail
from gateway.api.deps import InboxDep, LiveDep, QueriesDep
from gateway.api.errors import errors
from gateway.api.params import AlarmPath
from gateway.api.ports import DatabaseUnavailable
from gateway.api.security import control

router = APIRouter(tags=["alarms"])


@router.get("/api/v1/alarms")
async def alarms(
    live: LiveDep, open_only: Annotated[bool, Query(alias="open")] = True
) -> list[Alarm]:
    """Alarms held by the engine now (live, from memory), most urgent and oldest first."""
    return live.alarms(open_only)


@router.get("/api/v1/alarms/{alarm_id}", responses=errors(404, 503))
async def alarm_detail(alarm_id: AlarmPath, live: LiveDep, queries: QueriesDep) -> AlarmDetail:
    """One alarm: live state, its timeline and every routing decision (from TimescaleDB)."""
    a = live.alarm(str(alarm_id))
    try:
        timeline, decisions = await queries.alarm_history(str(alarm_id))
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc
    if a is None and not timeline:
        raise HTTPException(404, f"no alarm {alarm_id}")
    return AlarmDetail(alarm=a, timeline=tuple(timeline), decisions=tuple(decisions))


@router.post(
    "/api/v1/alarms/{alarm_id}/promote",
    status_code=202,
    dependencies=[Depends(control)],
    responses=errors(401, 404, 409),
)
async def promote(alarm_id: AlarmPath, live: LiveDep, inbox: InboxDep) -> Accepted:
    """Turn a test call (from a device in a test window) into a real alarm: it is raised and
    offered at once. 404 for an unknown alarm, 409 for one that is not a test call."""
    a = live.alarm(str(alarm_id))
    if a is None:
        raise HTTPException(404, f"no alarm {alarm_id}")
    if a.state != "test_call":
        raise HTTPException(409, f"alarm {alarm_id} is {a.state}, not a test call")
    await inbox.submit_control(a.scheme, {"op": "promote", "alarm_id": str(alarm_id)})
    return Accepted()
