"""The control room's KPI strip: pure figures over alarm times read from the record.

Time to accept and to arrive are measured from the alarm's ``raised`` step to its first
accept and its first arrival, in engine (scheme) time, so an accelerated night reads as the
night it simulates. An alarm is judged against its on-site target once a carer arrived, or
once the target has passed without one (still open, or closed without an arrival only if
that took longer than the target); an alarm cancelled or resolved before its target without
anyone on site is not judged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from api_models import KpiFigures

HOURS = 12  # the sparkline's span


@dataclass(frozen=True, slots=True)
class AlarmTimes:
    alarm_id: str
    priority: str
    raised: datetime
    accepted: datetime | None = None
    arrived: datetime | None = None
    closed: datetime | None = None  # resolved or cancelled


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between ranks; None for no values."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return round(s[lo] + (s[hi] - s[lo]) * (pos - lo), 1)


def judged(a: AlarmTimes, target_s: int | None, now: datetime) -> bool | None:
    """Within target (True), missed (False), or not judged (None)."""
    if target_s is None:
        return None
    due = a.raised + timedelta(seconds=target_s)
    if a.arrived is not None:
        return a.arrived <= due
    end = a.closed or now
    return False if end > due else None


def figures(
    window: str,
    start: datetime,
    end: datetime,
    rows: Sequence[AlarmTimes],
    targets: dict[str, int],
    now: datetime,
) -> KpiFigures:
    """The figures for alarms raised in [start, end)."""
    mine = [a for a in rows if start <= a.raised < end]
    accept = [(a.accepted - a.raised).total_seconds() for a in mine if a.accepted]
    arrive = [(a.arrived - a.raised).total_seconds() for a in mine if a.arrived]
    verdicts = [v for a in mine if (v := judged(a, targets.get(a.priority), now)) is not None]
    pct = round(100 * sum(verdicts) / len(verdicts), 1) if verdicts else None
    return KpiFigures(
        window=window,
        start=start,
        end=end,
        alarms=len(mine),
        accepted=len(accept),
        arrived=len(arrive),
        accept_median_s=percentile(accept, 0.5),
        accept_p90_s=percentile(accept, 0.9),
        arrive_median_s=percentile(arrive, 0.5),
        arrive_p90_s=percentile(arrive, 0.9),
        judged=len(verdicts),
        within_target_pct=pct,
    )


def night_window(now: datetime, tz: ZoneInfo, start: time, end: time) -> tuple[datetime, datetime]:
    """Tonight: the night window now is in, else the last one to have started (so by day
    the strip shows last night). Handles a window that crosses midnight."""
    local = now.astimezone(tz)
    for days_back in range(0, 3):
        day = local.date() - timedelta(days=days_back)
        s = datetime.combine(day, start, tzinfo=tz)
        e = datetime.combine(day + timedelta(days=1 if end <= start else 0), end, tzinfo=tz)
        if s <= local:
            return s.astimezone(now.tzinfo), e.astimezone(now.tzinfo)
    raise AssertionError("a night window starts within three days")  # pragma: no cover


def today_window(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Today: local midnight to the next."""
    local = now.astimezone(tz)
    s = datetime.combine(local.date(), time(0), tzinfo=tz)
    return s.astimezone(now.tzinfo), (s + timedelta(days=1)).astimezone(now.tzinfo)


def hourly(
    rows: Sequence[AlarmTimes], now: datetime, hours: int = HOURS
) -> tuple[datetime, list[int]]:
    """Alarms raised per hour for the last ``hours`` hours (the last bucket is the current
    hour so far), oldest first, with the first bucket's start."""
    top = now.replace(minute=0, second=0, microsecond=0)
    first = top - timedelta(hours=hours - 1)
    counts = [0] * hours
    for a in rows:
        i = int((a.raised - first).total_seconds() // 3600)
        if 0 <= i < hours and a.raised <= now:
            counts[i] += 1
    return first, counts
