"""Alarms: the engine's live view, and one alarm's timeline and decision records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from api_models import Accepted, Alarm, AlarmDetail
from gateway.api.deps import InboxDep, LiveDep, QueriesDep
from gateway.api.ports import DatabaseUnavailable, NotAnId
from gateway.api.security import control

router = APIRouter(tags=["alarms"])


@router.get("/api/v1/alarms")
async def alarms(
    live: LiveDep, open_only: Annotated[bool, Query(alias="open")] = True
) -> list[Alarm]:
    """Alarms held by the engine now (live, from memory), most urgent and oldest first."""
    return live.alarms(open_only)


@router.get("/api/v1/alarms/{alarm_id}")
async def alarm_detail(alarm_id: str, live: LiveDep, queries: QueriesDep) -> AlarmDetail:
    """One alarm: live state, its timeline and every routing decision (from TimescaleDB)."""
    a = live.alarm(alarm_id)
    try:
        timeline, decisions = await queries.alarm_history(alarm_id)
    except NotAnId as exc:
        raise HTTPException(422, f"not an alarm id: {alarm_id!r}") from exc
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc
    if a is None and not timeline:
        raise HTTPException(404, f"no alarm {alarm_id!r}")
    return AlarmDetail(alarm=a, timeline=tuple(timeline), decisions=tuple(decisions))


@router.post("/api/v1/alarms/{alarm_id}/promote", status_code=202, dependencies=[Depends(control)])
async def promote(alarm_id: str, live: LiveDep, inbox: InboxDep) -> Accepted:
    """Turn a test call (from a device in a test window) into a real alarm: it is raised and
    offered at once. 404 for an unknown alarm, 409 for one that is not a test call."""
    a = live.alarm(alarm_id)
    if a is None:
        raise HTTPException(404, f"no alarm {alarm_id!r}")
    if a.state != "test_call":
        raise HTTPException(409, f"alarm {alarm_id!r} is {a.state}, not a test call")
    await inbox.submit_control(a.scheme, {"op": "promote", "alarm_id": alarm_id})
    return Accepted()
