"""Thurrock schedule 3 from the planned visits' lifecycle: a seeded four-week Thurrock period of
``visit_events`` rows in a fresh database, the return produced as CSV and parsed back. The
figures are worked out in the test by playing the same inputs through the pure rules
(``gateway.engine.visits``), and one client's week is also checked by hand."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devices.scheme import load_scheme
from devices.visits import ServiceUnit, VisitSchedule, load_schedule
from gateway.engine import visits as ev
from gateway.reports import csvout, schedule3
from gateway.reports.scope import PeriodError
from gateway.reports.service import build_scope

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCHEME_FILE = REPO / "examples" / "thurrock-ooh.yaml"
START = date(2026, 11, 2)  # a Monday; four weeks to Sunday 29 November
SEED = 1303


@dataclass
class Night:
    """One night played through the pure rules, with the rows the shipper would write."""

    night: date
    visits: dict[str, ev.Visit]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


_SEQ = itertools.count(1)


def _row(n: Night, v: ev.Visit, step: str, at: datetime, **detail: Any) -> None:
    carer = detail.pop("carer", None)
    n.rows.append(
        (
            at,
            "thurrock-ooh",
            n.night,
            v.visit_id,
            v.run,
            v.client,
            step,
            carer,
            None,
            v.agreed_at,
            json.dumps(detail),
            "gw-schedule3-test",
            next(_SEQ),
        )
    )


def _apply(n: Night, inp: ev.Input, rules: ev.Rules) -> list[ev.Effect]:
    n.visits, effects = ev.step(n.visits, inp, rules)
    return effects


def play_night(night: date, schedule: VisitSchedule, rng: random.Random, rules: ev.Rules) -> Night:
    """A seeded night: most visits on time or a little late, some very late, frustrated
    (before or after check-in), cancelled by the Council (in time or at late notice) or the
    person, moved, missed, and an extra visit or two."""
    n = Night(night, ev.night_plan(schedule, night, rules.tz))
    noon = datetime.combine(night, time(12), rules.tz).astimezone(rules.tz)
    for v in n.visits.values():
        _row(n, v, "planned", noon)
    for k in range(rng.choice((0, 0, 1, 2))):
        base = n.visits[rng.choice(sorted(n.visits))]
        extra = replace(
            base,
            visit_id=f"x-{night.isoformat()}-{k}",
            agreed_at=base.agreed_at + timedelta(minutes=rng.randint(10, 90)),
            minutes=rng.choice((15, 25, 45)),
            level="Night - extra",
        )
        _apply(n, ev.AddExtra(extra), rules)
        v = n.visits[extra.visit_id]
        _row(n, v, "extra", noon + timedelta(hours=rng.randint(1, 9)), **_plan(v))
    for vid in sorted(n.visits):
        _play_visit(n, vid, rng, rules)
    end = datetime.combine(night + timedelta(days=1), time(7), rules.tz)
    for e in _apply(n, ev.EndOfNight(end), rules):
        if isinstance(e, ev.Missed):
            _row(n, n.visits[e.visit_id], "missed", end)
    return n


def _plan(v: ev.Visit) -> dict[str, Any]:
    return {"service": v.service, "level": v.level, "minutes": v.minutes}


def _play_visit(n: Night, vid: str, rng: random.Random, rules: ev.Rules) -> None:
    v = n.visits[vid]
    carer = f"ooh-0{int(v.run[-1]) * 2 - 1}"
    roll = rng.random()
    if roll < 0.06:  # moved, then made at its new time
        new = v.agreed_at + timedelta(minutes=rng.randint(20, 120))
        _apply(n, ev.Move(vid, new), rules)
        _row(
            n, n.visits[vid], "moved", v.agreed_at - timedelta(hours=2), was=v.agreed_at.isoformat()
        )
        v = n.visits[vid]
        roll = 0.5
    if roll < 0.12:
        return  # nobody came: missed at the end of the night
    if roll < 0.18:  # the Council cancels: two days ahead, or the same evening (late notice)
        at = v.agreed_at - timedelta(days=2 if rng.random() < 0.5 else 0, hours=3)
        _apply(n, ev.Cancel(vid, ev.CancelledBy.COUNCIL, at), rules)
        w = n.visits[vid]
        _row(n, w, "cancelled", at, by="council", late_notice=w.late_notice)
        return
    if roll < 0.22:  # the person cancels: before the agreed time, or after it (frustrated)
        at = v.agreed_at + timedelta(minutes=rng.choice((-60, 10)))
        _apply(n, ev.Cancel(vid, ev.CancelledBy.PERSON, at), rules)
        w = n.visits[vid]
        _row(n, w, w.status.value, at, by="person", late_notice=False)
        return
    if roll < 0.28:  # no access: frustrated at the door, never checked in
        at = v.agreed_at + timedelta(minutes=rng.randint(0, 20))
        _apply(n, ev.Frustrate(vid, "no_access", at), rules)
        _row(n, n.visits[vid], "frustrated", at, carer=carer, reason="no_access")
        return
    late = rng.choice((-5, 0, 3, 8, 14, 15, 22, 30, 31, 44)) * 60 + rng.randint(0, 59)
    cin = v.agreed_at + timedelta(seconds=late)
    if late >= rules.late_alert_min * 60:
        _row(n, v, "late_alert", v.agreed_at + timedelta(minutes=rules.late_alert_min))
    _apply(n, ev.CheckIn(vid, carer, cin), rules)
    _row(n, n.visits[vid], "checked_in", cin, carer=carer)
    # A second check-in is refused and must change nothing in the return.
    if rng.random() < 0.1:
        _apply(n, ev.CheckIn(vid, carer, cin + timedelta(seconds=30)), rules)
        _row(n, n.visits[vid], "refused", cin + timedelta(seconds=30), reason="checked_in")
    if rng.random() < 0.04:  # a P1 took the carer away and the run never came back: missed
        _apply(n, ev.PulledAway(vid, "alarm-1"), rules)
        _row(n, n.visits[vid], "pulled_away", cin + timedelta(minutes=5), was="checked_in")
        return
    if rng.random() < 0.05:  # turned away once inside
        at = cin + timedelta(minutes=2)
        _apply(n, ev.Frustrate(vid, "turned_away", at), rules)
        _row(n, n.visits[vid], "frustrated", at, carer=carer, reason="turned_away")
        return
    if rng.random() < 0.03:
        return  # checked in, never checked out: performed, no duration
    cout = cin + timedelta(seconds=v.minutes * 60 + rng.randint(-300, 600))
    _apply(n, ev.CheckOut(vid, carer, cout), rules)
    _row(n, n.visits[vid], "checked_out", cout, carer=carer)


def seeded_period(schedule: VisitSchedule, rules: ev.Rules) -> list[Night]:
    """Every night whose visits can fall in the period: from the Sunday before (its visits
    after midnight are Monday's) to the last Sunday (its visits after midnight are not)."""
    rng = random.Random(SEED)
    first = START - timedelta(days=1)
    return [play_night(first + timedelta(days=d), schedule, rng, rules) for d in range(29)]


def write(dsn: str, nights: list[Night]) -> int:
    rows = [r for n in nights for r in n.rows]
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO visit_events (at, scheme, night, visit_id, run, client_ref, step,"
            " carer_id, alarm_id, agreed_at, detail, gateway_id, journal_seq)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)",
            rows,
        )
    return len(rows)


def in_period(nights: list[Night], tz: Any) -> list[ev.Visit]:
    end = START + timedelta(days=28)
    return [
        v
        for n in nights
        for v in n.visits.values()
        if START <= v.agreed_at.astimezone(tz).date() < end
    ]


async def produce(dsn: str, schedule: VisitSchedule | None) -> str:
    scheme = load_scheme(SCHEME_FILE)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        scope = await build_scope(conn, scheme, schedule3.weeks_period(START, 4))
        return csvout.schedule3_csv(await schedule3.schedule3(conn, scope, 4, schedule))


def parse(text: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0].split(",")[:4] == [
        "Service",
        "Service Level Type",
        "Client Reference",
        "Week Start",
    ]
    return rows


def expected(visits: list[ev.Visit], unit: ServiceUnit, tz: Any) -> list[tuple[str, ...]]:
    return [
        (
            r.service,
            r.level,
            r.client,
            r.week_start.isoformat(),
            str(r.actual),
            str(r.frustrated),
            str(r.cancelled),
            str(r.missed),
            str(r.extra),
            str(r.visits),
            str(r.call_minutes),
            (r.week_start + timedelta(days=6)).isoformat(),
            r.comments,
        )
        for r in ev.schedule3(visits, unit, tz)
    ]


def got(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return [tuple(r[h] for h in csvout.SCHEDULE3_HEADER) for r in rows]


@pytest.fixture
def period_db(report_db: str) -> tuple[str, VisitSchedule, list[Night]]:
    scheme = load_scheme(SCHEME_FILE)
    schedule = load_schedule(SCHEME_FILE.with_name("thurrock-ooh.visits.yaml"), scheme)
    rules = ev.Rules(schedule.late_alert_min, schedule.contact_min, scheme.tz)
    nights = seeded_period(schedule, rules)
    assert write(report_db, nights) > 28 * len(schedule.visits())
    return report_db, schedule, nights


def test_schedule3_csv_parses_back_one_row_per_client_per_week(
    period_db: tuple[str, VisitSchedule, list[Night]],
) -> None:
    dsn, schedule, nights = period_db
    scheme = load_scheme(SCHEME_FILE)
    text = asyncio.run(produce(dsn, schedule))
    rows = parse(text)
    visits = in_period(nights, scheme.tz)
    # The seeded period has every kind of ending the return counts.
    statuses = Counter(v.status for v in visits)
    assert all(statuses[s] > 0 for s in ev.VisitStatus if s is not ev.VisitStatus.PLANNED)
    assert sum(v.extra for v in visits) > 0 and sum(v.late_notice for v in visits) > 0
    # ...including a visit pulled away after its check-in and never resumed (missed).
    assert any(v.status is ev.VisitStatus.MISSED and v.checked_in_at for v in visits)
    # One row per client (and service level type) per week, four weeks, Monday starts.
    keys = [(r["Client Reference"], r["Service Level Type"], r["Week Start"]) for r in rows]
    assert len(keys) == len(set(keys))
    weeks = sorted({r["Week Start"] for r in rows})
    assert weeks == [(START + timedelta(days=7 * k)).isoformat() for k in range(4)]
    planned_clients = {v.client for r in schedule.runs for v in r.visits}
    for w in weeks:  # every scheduled client is visited every week
        assert {r["Client Reference"] for r in rows if r["Week Start"] == w} == planned_clients
    # Quantities and durations: exactly what the pure rules give for the same inputs.
    assert got(rows) == expected(visits, ServiceUnit.VISIT, scheme.tz)
    # A closed week: actual = planned + extra - frustrated - cancelled - missed, per row.
    for r in rows:
        n = sum(
            1
            for v in visits
            if v.client == r["Client Reference"]
            and v.level == r["Service Level Type"]
            and _week(v, scheme.tz) == r["Week Start"]
        )
        q = {k: int(r[f"{k} Quantity"]) for k in ("Actual", "Frustrated", "Cancelled", "Missed")}
        assert q["Actual"] == n - q["Frustrated"] - q["Cancelled"] - q["Missed"], r
    # No names: client references only.
    for resident in scheme.residents:
        assert resident.display_name not in text


def _week(v: ev.Visit, tz: Any) -> str:
    d = v.agreed_at.astimezone(tz).date()
    return (d - timedelta(days=d.weekday())).isoformat()


def test_one_client_week_by_hand(period_db: tuple[str, VisitSchedule, list[Night]]) -> None:
    """THR-4100's first week, counted straight from the seeded visits (no engine function)."""
    dsn, schedule, nights = period_db
    scheme = load_scheme(SCHEME_FILE)
    rows = parse(asyncio.run(produce(dsn, schedule)))
    mine = [
        v
        for v in in_period(nights, scheme.tz)
        if v.client == "THR-4100"
        and _week(v, scheme.tz) == START.isoformat()
        and v.level == "Night - double handed"
    ]
    (row,) = [
        r
        for r in rows
        if r["Client Reference"] == "THR-4100"
        and r["Week Start"] == START.isoformat()
        and r["Service Level Type"] == "Night - double handed"
    ]
    there = [v for v in mine if v.checked_in_at is not None]
    # Performed: not frustrated, nor pulled away and never resumed (missed).
    done = [v for v in there if v.status not in (ev.VisitStatus.FRUSTRATED, ev.VisitStatus.MISSED)]
    minutes = 0
    for v in there:
        if v.checked_out_at is not None and v.checked_in_at is not None:
            minutes += int((v.checked_out_at - v.checked_in_at).total_seconds()) // 60
    assert int(row["Actual Quantity"]) == len(done)
    assert int(row["Number of Visits"]) == len(there)
    assert int(row["Call Duration (minutes)"]) == minutes
    assert int(row["Missed Quantity"]) == sum(v.status is ev.VisitStatus.MISSED for v in mine)
    assert row["End Date"] == (START + timedelta(days=6)).isoformat()


def test_minutes_unit_and_the_schedule_fallback(
    period_db: tuple[str, VisitSchedule, list[Night]],
) -> None:
    """With ``service_unit: minutes`` a unit is a planned minute: planned visits take theirs
    from the schedule file (their rows carry none), extra ones from their ``extra`` step."""
    dsn, schedule, nights = period_db
    scheme = load_scheme(SCHEME_FILE)
    by_minutes = schedule.model_copy(update={"service_unit": ServiceUnit.MINUTES})
    rows = parse(asyncio.run(produce(dsn, by_minutes)))
    assert got(rows) == expected(in_period(nights, scheme.tz), ServiceUnit.MINUTES, scheme.tz)
    # Without the schedule, planned visits' service and level are not known: said, not guessed.
    bare = parse(asyncio.run(produce(dsn, None)))
    assert {r["Service"] for r in bare} == {"unknown", "Home care"}


def test_punctuality_joins_the_monthly_figures(
    period_db: tuple[str, VisitSchedule, list[Night]],
) -> None:
    dsn, _schedule, nights = period_db
    scheme = load_scheme(SCHEME_FILE)

    async def go() -> tuple[Any, Any]:
        from gateway.reports.scope import PeriodKind, period
        from gateway.reports.service import ReportKind, produce, to_csv

        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            scope = await build_scope(conn, scheme, period(PeriodKind.MONTH, START))
            report = await produce(conn, ReportKind.RESPONSE, scope)
            return report, to_csv(report)

    report, text = asyncio.run(go())
    month = [
        v
        for n in nights
        for v in n.visits.values()
        if v.agreed_at.astimezone(scheme.tz).date().month == 11
        and v.status is not ev.VisitStatus.CANCELLED
    ]
    want = Counter(ev.punctuality(v) for v in month)
    p = report.visit_punctuality
    assert p is not None
    assert p.visits == len(month)
    assert p.checked_in == len(month) - want[None]
    assert p.on_time == want[ev.Punctuality.ON_TIME] > 0
    assert p.late_under_15 == want[ev.Punctuality.LATE_UNDER_15] > 0
    assert p.late_15_to_30 == want[ev.Punctuality.LATE_15_TO_30] > 0
    assert p.late_over_30 == want[ev.Punctuality.LATE_OVER_30] > 0
    assert p.not_checked_in == want[None]
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["dimension"] == "visit_punctuality"]
    assert {r["value"]: int(r["counted"]) for r in rows}["late_over_30"] == p.late_over_30


def test_weeks_start_on_monday() -> None:
    assert schedule3.weeks_period(START, 4).last == date(2026, 11, 29)
    with pytest.raises(PeriodError, match="Monday"):
        schedule3.weeks_period(START + timedelta(days=2), 4)
    with pytest.raises(PeriodError, match="weeks"):
        schedule3.weeks_period(START, 0)
    assert schedule3.default_start(date(2026, 12, 2)) == date(2026, 11, 2)
    with pytest.raises(PeriodError, match="outside"):  # never an overflow: a clear refusal
        schedule3.weeks_period(date(9999, 12, 27), 52)
