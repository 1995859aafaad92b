"""The KPI strip: tonight's and today's figures per scheme, computed by the gateway."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api_models import SchemeKpi
from gateway import kpi
from gateway.api.deps import LiveDep, QueriesDep, known_scheme
from gateway.api.errors import errors
from gateway.api.params import SchemeQuery
from gateway.api.ports import DatabaseUnavailable
from gateway.api.security import OPERATIONS, allow

router = APIRouter(tags=["kpi"])


@router.get("/api/v1/kpi", dependencies=[allow(*OPERATIONS)], responses=errors(401, 403, 404, 503))
async def kpi_strip(
    live: LiveDep, queries: QueriesDep, scheme: SchemeQuery = None
) -> list[SchemeKpi]:
    """Per scheme, for tonight (the scheme's night window; by day, last night) and today
    (since local midnight): alarms raised, median and p90 time to accept and to arrive, the
    share with a carer on site within the scheme's target, and alarms per hour over the last
    12 hours. From TimescaleDB (seconds behind the engine), on scheme time."""
    known_scheme(live, scheme)
    now = live.clock().now
    out = []
    for sid in [scheme] if scheme else live.scheme_ids():
        s = live.scheme(sid)
        assert s is not None
        start, end = live.night_hours(sid)
        tonight = kpi.night_window(now, s.tz, start, end)
        today = kpi.today_window(now, s.tz)
        first, counts = kpi.hourly([], now)
        since = min(tonight[0], today[0], first)
        try:
            rows = await queries.alarm_times(sid, since)
        except DatabaseUnavailable as exc:
            raise HTTPException(503, f"database unavailable: {exc}") from exc
        targets = {p.value: int(v) for p, v in s.targets.items()}
        first, counts = kpi.hourly(rows, now)
        out.append(
            SchemeKpi(
                scheme=sid,
                now=now,
                tonight=kpi.figures("tonight", *tonight, rows, targets, now),
                today=kpi.figures("today", *today, rows, targets, now),
                hourly=tuple(counts),
                hourly_start=first,
                targets_s=targets,
            )
        )
    return out
