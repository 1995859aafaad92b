"""Thurrock schedule 3 and visit punctuality, from the planned visits' lifecycle
(``visit_events``), computed by PostgreSQL with the rules of ``gateway.engine.visits``.

Each visit of a night is folded into one row (its client, its agreed time as it last stood,
whether it was extra, when it was checked in and out, how it closed), then counted per client,
service level type and local week (Monday start). The service, service level type and planned
minutes come from the ``planned``/``extra`` step's detail where the gateway wrote them, else
from the scheme's visit schedule file (by visit id). docs/visits.md defines every column.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from psycopg.rows import dict_row

from devices.scheme import Scheme
from devices.visits import ServiceUnit, VisitSchedule, load_schedule
from gateway.reports.figures import Conn, head
from gateway.reports.models import Schedule3Return, Schedule3Row, VisitPunctuality
from gateway.reports.scope import (
    FIRST_DAY,
    LAST_DAY,
    Period,
    PeriodError,
    PeriodKind,
    Scope,
    period,
)

MAX_WEEKS = 52

# One row per visit of a night whose agreed time (as it last stood: a moved visit is counted
# where it was moved to) falls in the period. Steps are read from three days either side: a
# night's plan is built at noon before it, and its visits close by 07:00 after it. Refused
# inputs change nothing, so they are left out. The last of the closing steps says how the
# visit ended (a checked-in visit may still be frustrated: turned away at the door; or missed:
# pulled away to an alarm and never resumed, its first check-in kept for punctuality).
VISITS = """
WITH steps AS (
    SELECT night, visit_id, at, step, client_ref, agreed_at, detail, journal_seq
      FROM visit_events
     WHERE scheme = %(scheme)s AND step <> 'refused'
       AND at >= %(lo)s - interval '3 days' AND at < %(hi)s + interval '3 days'
),
folded AS (
    SELECT night, visit_id,
           (array_agg(client_ref ORDER BY at DESC, journal_seq DESC))[1] AS client_ref,
           (array_agg(agreed_at ORDER BY at DESC, journal_seq DESC))[1] AS agreed_at,
           (array_agg(detail ORDER BY at, journal_seq)
               FILTER (WHERE step IN ('planned', 'extra')))[1] AS plan,
           bool_or(step = 'extra') AS extra,
           min(at) FILTER (WHERE step = 'checked_in') AS checked_in_at,
           min(at) FILTER (WHERE step = 'checked_out') AS checked_out_at,
           (array_agg(step ORDER BY at DESC, journal_seq DESC)
               FILTER (WHERE step IN ('checked_out', 'frustrated', 'cancelled', 'missed')))[1]
               AS closed,
           COALESCE(bool_or(step = 'cancelled' AND detail->>'late_notice' = 'true'), false)
               AS late_notice
      FROM steps
     GROUP BY night, visit_id
),
visits AS (
    SELECT f.*,
           COALESCE(f.plan->>'service', p.service, 'unknown') AS service,
           COALESCE(f.plan->>'level', p.level, 'unknown') AS level,
           COALESCE(CASE WHEN f.plan->>'minutes' ~ '^[0-9]{1,4}$'
                         THEN (f.plan->>'minutes')::int END, p.minutes, 0) AS minutes,
           (f.agreed_at AT TIME ZONE %(tz)s)::date AS local_day
      FROM folded f
      LEFT JOIN unnest(%(plan_ids)s::text[], %(plan_services)s::text[],
                       %(plan_levels)s::text[], %(plan_minutes)s::int[])
             AS p(visit_id, service, level, minutes) ON p.visit_id = f.visit_id
     WHERE f.agreed_at >= %(lo)s AND f.agreed_at < %(hi)s
)"""

# A unit is a visit, or a planned minute when the schedule says ``service_unit: minutes``.
_UNIT = "CASE WHEN %(unit)s = 'minutes' THEN minutes ELSE 1 END"

SCHEDULE3 = (
    VISITS
    + f"""
SELECT service, level, client_ref,
       local_day - (extract(isodow FROM local_day)::int - 1) AS week,
       COALESCE(sum({_UNIT}) FILTER (WHERE checked_in_at IS NOT NULL
                                    AND closed IS DISTINCT FROM 'frustrated'
                                    AND closed IS DISTINCT FROM 'missed'), 0) AS actual,
       COALESCE(sum({_UNIT}) FILTER (WHERE closed = 'frustrated'), 0) AS frustrated,
       COALESCE(sum({_UNIT}) FILTER (WHERE closed = 'cancelled'), 0) AS cancelled,
       COALESCE(sum({_UNIT}) FILTER (WHERE closed = 'missed'), 0) AS missed,
       COALESCE(sum({_UNIT}) FILTER (WHERE extra), 0) AS extra,
       count(checked_in_at) AS visits,
       COALESCE(sum(floor(extract(epoch FROM checked_out_at - checked_in_at) / 60))
                FILTER (WHERE checked_out_at IS NOT NULL AND checked_in_at IS NOT NULL), 0)
           AS call_minutes,
       string_agg(visit_id, ', ' ORDER BY visit_id) FILTER (WHERE late_notice) AS late_notice
  FROM visits
 GROUP BY service, level, client_ref, week
 ORDER BY client_ref COLLATE "C", service COLLATE "C", level COLLATE "C", week"""
)

# Check-in against the agreed time: on time, late by under 15 minutes, 15 to 30, over 30
# (``gateway.engine.visits.punctuality``). Cancelled visits are not expected, so not counted.
PUNCTUALITY = (
    VISITS
    + """,
late AS (
    SELECT *, extract(epoch FROM checked_in_at - agreed_at) AS late_s
      FROM visits WHERE closed IS DISTINCT FROM 'cancelled'
)
SELECT count(*) AS visits,
       count(checked_in_at) AS checked_in,
       count(*) FILTER (WHERE late_s <= 0) AS on_time,
       count(*) FILTER (WHERE late_s > 0 AND late_s < 900) AS late_under_15,
       count(*) FILTER (WHERE late_s >= 900 AND late_s <= 1800) AS late_15_to_30,
       count(*) FILTER (WHERE late_s > 1800) AS late_over_30,
       count(*) FILTER (WHERE checked_in_at IS NULL
                        AND closed IN ('missed', 'frustrated')) AS not_checked_in
  FROM late"""
)


def weeks_period(start: date, weeks: int) -> Period:
    """``weeks`` whole weeks from ``start``, which must be a Monday (schedule 3's weeks are
    Monday to Sunday, so a return that began mid-week would cut its first and last week)."""
    if not FIRST_DAY <= start <= LAST_DAY:
        raise PeriodError(
            f"{start} is outside the days a report covers ({FIRST_DAY} to {LAST_DAY})"
        )
    if start.weekday() != 0:
        raise PeriodError(
            f"schedule 3 weeks start on a Monday; {start} is a {start.strftime('%A')}"
        )
    if not 1 <= weeks <= MAX_WEEKS:
        raise PeriodError(f"weeks is 1 to {MAX_WEEKS}, not {weeks}")
    return period(PeriodKind.CUSTOM, start, start + timedelta(days=7 * weeks - 1))


def default_start(today: date, weeks: int = 4) -> date:
    """The Monday ``weeks`` whole weeks before the current week: the last full return."""
    return today - timedelta(days=today.weekday() + 7 * weeks)


def find_schedule(scheme: Scheme, paths: Iterable[Path]) -> VisitSchedule | None:
    """This scheme's visit schedule among ``paths`` (explicit schedule files first, then
    ``<stem>.visits.yaml`` beside each scheme file), or None. A schedule that names this
    scheme but is invalid raises ``SchemeError``: a return must not be counted from a guess."""
    seen: set[Path] = set()
    for path in paths:
        candidates = [path]
        if not path.name.endswith(".visits.yaml"):
            candidates = [path.with_name(f"{path.stem}.visits.yaml")]
        for c in candidates:
            if c in seen or not c.is_file():
                continue
            seen.add(c)
            try:
                named = yaml.safe_load(c.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                named = None
            if isinstance(named, dict) and named.get("scheme") == scheme.id:
                return load_schedule(c, scheme)
    return None


def _params(scope: Scope, schedule: VisitSchedule | None) -> dict[str, Any]:
    planned = [v for r in schedule.runs for v in r.visits] if schedule else []
    unit = schedule.service_unit if schedule else ServiceUnit.VISIT
    return {
        **scope.params(),
        "unit": unit.value,
        "plan_ids": [v.id for v in planned],
        "plan_services": [v.service for v in planned],
        "plan_levels": [v.level for v in planned],
        "plan_minutes": [v.minutes for v in planned],
    }


async def _fetch(conn: Conn, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)  # our own SQL text; every value is a parameter
        return await cur.fetchall()


async def punctuality(
    conn: Conn, scope: Scope, schedule: VisitSchedule | None = None
) -> VisitPunctuality:
    (r,) = await _fetch(conn, PUNCTUALITY, _params(scope, schedule))
    return VisitPunctuality(**{k: int(v) for k, v in r.items()})


async def schedule3(
    conn: Conn, scope: Scope, weeks: int, schedule: VisitSchedule | None = None
) -> Schedule3Return:
    """The return for ``scope`` (whole weeks from a Monday: ``weeks_period``)."""
    params = _params(scope, schedule)
    rows = await _fetch(conn, SCHEDULE3, params)
    return Schedule3Return(
        head=head(scope),
        service_unit=params["unit"],
        weeks=weeks,
        rows=[
            Schedule3Row(
                service=r["service"],
                level=r["level"],
                client_ref=r["client_ref"],
                week_start=r["week"],
                week_end=r["week"] + timedelta(days=6),
                actual=int(r["actual"]),
                frustrated=int(r["frustrated"]),
                cancelled=int(r["cancelled"]),
                missed=int(r["missed"]),
                extra=int(r["extra"]),
                visits=int(r["visits"]),
                call_minutes=int(r["call_minutes"]),
                comments=(
                    f"late-notice Council cancellation: {r['late_notice']}"
                    if r["late_notice"]
                    else ""
                ),
            )
            for r in rows
        ],
        punctuality=await punctuality(conn, scope, schedule),
    )
