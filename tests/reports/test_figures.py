"""Response figures against a hand-made month: exact counts, percentiles and within-target
shares, with the boundaries that matter (exactly 60 s and 180 s, exactly 45 and 60 minutes,
an alarm across midnight and the month's end, the spring clock change, a deferred bed exit).

Each expected number is worked out here, from the alarm list, independently of the SQL; the
key ones are also written out by hand."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from gateway.reports import figures
from gateway.reports.scope import PeriodKind, Scope, period
from gateway.reports.targets import DEFAULT_TARGETS
from tests.reports.lifecycle import Spec, insert

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def std(
    name: str,
    received: datetime,
    accept: float | None,
    arrive_after_deploy: float | None = None,
    *,
    deploy: float = 1,
    resolve: float | None = None,
    outcome: str = "assisted",
    **kw: object,
) -> Spec:
    """An alarm offered ``deploy`` s after receipt, accepted at ``accept``, arriving
    ``arrive_after_deploy`` s after the offer, resolved at ``resolve``."""
    steps: list[tuple[str, float]] = [("offered", deploy)]
    if accept is not None:
        steps.append(("accepted", accept))
    if arrive_after_deploy is not None:
        steps.append(("arrived", deploy + arrive_after_deploy))
        if resolve is not None:
            steps.append(("resolved", resolve))
    return Spec(name, received, steps=steps, outcome=outcome, **kw)  # type: ignore[arg-type]


# March 2026 in Europe/London: GMT until 01:00 UTC on Sunday 29 March, then BST.
MARCH = [
    std("a1", utc(2026, 3, 2, 10), 30, 299, resolve=900),
    # exactly 60 s to accept; exactly 45 min from the decision to deploy to arrival
    std("a2", utc(2026, 3, 3, 12), 60, 2700, deploy=0, resolve=3000),
    # one second over each first tier, within the second; a fall with an ambulance
    std(
        "a3",
        utc(2026, 3, 4, 14),
        61,
        2701,
        deploy=2,
        resolve=4000,
        outcome="fall_injury_ambulance",
        kind="fall_detected",
    ),
    # exactly 180 s; exactly 60 min; at night (23:30 GMT)
    std(
        "a4",
        utc(2026, 3, 5, 23, 30),
        180,
        3600,
        deploy=5,
        resolve=5000,
        outcome="hospital_admission",
    ),
    # over both tiers; raised at 23:59:50 and arrived the next day
    std(
        "a5",
        utc(2026, 3, 6, 23, 59, 50),
        181,
        3601,
        resolve=4000,
        outcome="unable_to_gain_access",
    ),
    # cancelled, false, test: counted apart
    Spec("a6", utc(2026, 3, 7, 10), steps=[("offered", 1), ("cancelled", 20)]),
    std("a7", utc(2026, 3, 8, 10), 10, 90, resolve=200, outcome="false_alarm"),
    Spec("a8", utc(2026, 3, 9, 10), test_call=True),
    # 06:30 UTC on the clock-change morning is 07:30 BST: day (it would be night in GMT)
    std("a9", utc(2026, 3, 29, 6, 30), 45),
    # 05:59:59 UTC is 06:59:59 BST: night
    std("a10", utc(2026, 3, 29, 5, 59, 59), 20),
    # 23:50 BST on 31 March: in March, at night, arriving on 1 April
    std("a11", utc(2026, 3, 31, 22, 50), 40, 1000, resolve=2400),
    # 00:10 BST on 1 April: not March, although it is 31 March in UTC
    std("a12", utc(2026, 3, 31, 23, 10), 5, 10, resolve=20),
    # 23:30 GMT on 28 February: not March
    std("a13", utc(2026, 2, 28, 23, 30), 5, 10, resolve=20),
    # a bed exit at 00:00:00 on 1 March (the first instant of the month), deferred 20 minutes:
    # the call starts when the deferral ends
    Spec(
        "a14",
        utc(2026, 3, 1),
        kind="bed_exit",
        priority="P2",
        steps=[
            ("defer_expired", 1200),
            ("offered", 1200),
            ("accepted", 1250),
            ("arrived", 1500),
            ("resolved", 1800),
        ],
        outcome="assisted",
    ),
    # a fire: escalated to everyone at once
    Spec(
        "a15",
        utc(2026, 3, 10, 15),
        kind="smoke",
        priority="P0",
        steps=[("escalated", 0), ("accepted", 15), ("arrived", 120), ("resolved", 600)],
        outcome="fire_service_called",
    ),
    # a Careline call-out at 02:00
    std("a16", utc(2026, 3, 11, 2), 100, 1800, deploy=3, resolve=2500, kind="callout"),
    # another scheme on the same day: never in s1's figures
    std("other", utc(2026, 3, 2, 10), 500, 9000, resolve=9999, scheme="s2"),
]


def scope(p: PeriodKind = PeriodKind.MONTH, on: date = date(2026, 3, 1)) -> Scope:
    return Scope(
        scheme_id="s1",
        scheme_name="Scheme one",
        tz=LONDON,
        night_start=time(23),
        night_end=time(7),
        period=period(p, on),
        targets=DEFAULT_TARGETS,
    )


# ---- the independent model -----------------------------------------------------------------


def raised_at(s: Spec) -> datetime:
    return s.at("defer_expired") or s.received


def deploy_at(s: Spec) -> datetime | None:
    return s.at("offered") or s.at("escalated")


def excluded(s: Spec) -> str | None:
    if s.test_call:
        return "test"
    if s.at("cancelled"):
        return "cancelled"
    if s.outcome == "false_alarm" and s.at("resolved"):
        return "false"
    return None


def is_night(s: Spec) -> bool:
    t = raised_at(s).astimezone(LONDON).time()
    return t >= time(23) or t < time(7)


def secs(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else (a - b).total_seconds()


def disc(values: list[float], p: float) -> float | None:
    """percentile_disc: the first value whose cumulative share reaches ``p``."""
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(p * len(v)) - 1)]


def in_march(s: Spec) -> bool:
    lo = datetime(2026, 3, 1, tzinfo=LONDON)
    hi = datetime(2026, 4, 1, tzinfo=LONDON)
    return s.scheme == "s1" and lo <= raised_at(s) < hi


def expected(specs: list[Spec]) -> dict[str, object]:
    counted = [s for s in specs if excluded(s) is None]
    accept = [secs(s.at("accepted"), raised_at(s)) for s in counted]
    attend = [secs(s.at("arrived"), deploy_at(s)) for s in counted]
    acc = [a for a in accept if a is not None]
    att = [a for a in attend if a is not None]
    return {
        "alarms": len(specs),
        "counted": len(counted),
        "accept": (disc(acc, 0.5), disc(acc, 0.9), disc(acc, 0.95), max(acc, default=None)),
        "attend": (disc(att, 0.5), disc(att, 0.9), disc(att, 0.95), max(att, default=None)),
        "answer_met": (
            sum(1 for a in accept if a is not None and a <= 60),
            sum(1 for a in accept if a is not None and a <= 180),
        ),
        "attend_met": (
            sum(1 for a in attend if a is not None and a <= 2700),
            sum(1 for a in attend if a is not None and a <= 3600),
        ),
    }


async def run(dsn: str, sc: Scope, **kw: bool) -> figures.ResponseReport:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await figures.response(conn, sc, **kw)


def group(report: figures.ResponseReport, dimension: str, value: str) -> figures.Group:
    return next(g for g in report.groups if g.dimension == dimension and g.value == value)


# ---- tests ---------------------------------------------------------------------------------


async def test_month_figures_match_the_hand_computed_ones(report_db: str) -> None:
    insert(report_db, MARCH)
    report = await run(report_db, scope())
    march = [s for s in MARCH if in_march(s)]
    # Written out by hand: 14 alarms raised in March local time (a1-a11, a14, a15, a16);
    # a6 cancelled, a7 false, a8 a test call; 11 counted.
    assert sorted(s.name for s in march) == sorted(
        ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10", "a11", "a14", "a15", "a16"]
    )
    everything = group(report, "all", "all")
    assert (everything.alarms, everything.counted) == (14, 11)
    assert (everything.test_calls, everything.cancelled, everything.false_alarms) == (1, 1, 1)
    # Accepted within 60 s: a1 30, a2 60, a9 45, a10 20, a11 40, a14 50, a15 15 = 7 of 11;
    # within 180 s adds a3 61, a4 180, a16 100 = 10; a5 is 181.
    assert [(w.met, w.of, w.pct) for w in everything.answer_within] == [
        (7, 11, 63.64),
        (10, 11, 90.91),
    ]
    # Deployed: all 11. Arrived within 45 min of deploy: a1 299, a2 2700, a11 1000, a14 300,
    # a15 120, a16 1800 = 6; within 60 min adds a3 2701, a4 3600 = 8; a5 3601 is over, a9 and
    # a10 have not arrived.
    assert [(w.met, w.of, w.pct) for w in everything.attend_within] == [
        (6, 11, 54.55),
        (8, 11, 72.73),
    ]
    want = expected(march)
    assert everything.counted == want["counted"]
    assert (
        everything.accept.p50,
        everything.accept.p90,
        everything.accept.p95,
        everything.accept.max,
    ) == want["accept"]
    assert (
        everything.attend.p50,
        everything.attend.p90,
        everything.attend.p95,
        everything.attend.max,
    ) == want["attend"]
    # By hand: accept times sorted 15 20 30 40 45 50 60 61 100 180 181 -> p50 is the 6th (50),
    # p90 the 10th (180), p95 the 11th (181).
    assert want["accept"] == (50.0, 180.0, 181.0, 181.0)
    assert [(w.met, w.of) for w in everything.answer_within] == [
        (want["answer_met"][0], 11),  # type: ignore[index]
        (want["answer_met"][1], 11),  # type: ignore[index]
    ]


async def test_night_split_across_midnight_and_the_clock_change(report_db: str) -> None:
    insert(report_db, MARCH)
    report = await run(report_db, scope())
    march = [s for s in MARCH if in_march(s)]
    nights = sorted(s.name for s in march if is_night(s))
    # By hand: a4 23:30, a5 23:59:50, a10 06:59:59 BST, a11 23:50 BST, a14 00:20, a16 02:00.
    assert nights == ["a10", "a11", "a14", "a16", "a4", "a5"]
    night, day = group(report, "night", "night"), group(report, "night", "day")
    assert (night.alarms, day.alarms) == (6, 8)
    counted_night = [s for s in march if is_night(s) and excluded(s) is None]
    want = expected(counted_night)
    assert night.counted == want["counted"] == 6
    assert (night.accept.p50, night.accept.p90, night.accept.p95, night.accept.max) == want[
        "accept"
    ]


async def test_priority_and_kind_splits(report_db: str) -> None:
    insert(report_db, MARCH)
    report = await run(report_db, scope())
    march = [s for s in MARCH if in_march(s)]
    for prio in ("P0", "P1", "P2"):
        g = group(report, "priority", prio)
        mine = [s for s in march if s.priority == prio]
        want = expected(mine)
        assert (g.alarms, g.counted) == (want["alarms"], want["counted"]), prio
        assert (g.accept.p50, g.accept.p90, g.accept.p95, g.accept.max) == want["accept"]
    falls = group(report, "kind", "fall_detected")
    assert (falls.alarms, falls.counted) == (1, 1)
    callout = group(report, "kind", "callout")
    assert callout.attend.max == 1800.0


async def test_a_day_and_a_custom_range(report_db: str) -> None:
    insert(report_db, MARCH)
    # 6 March local: only a5 (23:59:50 GMT), which arrives on 7 March.
    day = await run(report_db, scope(PeriodKind.DAY, date(2026, 3, 6)))
    only = group(day, "all", "all")
    assert (only.alarms, only.counted, only.arrived) == (1, 1, 1)
    assert only.attend.max == 3601.0
    # The clock-change weekend, Saturday 28 to Sunday 29 March: a9 and a10.
    sc = Scope(
        scheme_id="s1",
        scheme_name="Scheme one",
        tz=LONDON,
        night_start=time(23),
        night_end=time(7),
        period=period(PeriodKind.CUSTOM, date(2026, 3, 28), date(2026, 3, 29)),
        targets=DEFAULT_TARGETS,
    )
    lo, hi = sc.bounds
    assert hi - lo == timedelta(hours=47)  # one hour short: the clocks went forward
    weekend = group(await run(report_db, sc), "all", "all")
    assert (weekend.alarms, weekend.answered, weekend.arrived) == (2, 2, 0)


async def test_small_cells_are_withheld_when_asked(report_db: str) -> None:
    insert(report_db, MARCH)
    report = await run(report_db, scope(), suppress=True)
    everything = group(report, "all", "all")
    assert everything.counted == 11  # 5 or more: shown
    assert everything.test_calls is None  # 1: withheld
    # 7 of 11 within 60 s leaves 4 outside, which would name them: the share is withheld.
    first = everything.answer_within[0]
    assert (first.met, first.of, first.pct) == (7, 11, None)
    p0 = group(report, "priority", "P0")
    assert p0.alarms is None and p0.accept.p50 is None
    plain = await run(report_db, scope())
    assert group(plain, "priority", "P0").accept.p50 == 15.0


async def test_an_empty_period_has_one_overall_row(report_db: str) -> None:
    report = await run(report_db, scope(PeriodKind.MONTH, date(2025, 1, 1)))
    (only,) = report.groups
    assert (only.alarms, only.counted, only.answer_within[0].pct) == (0, 0, None)


async def test_an_alarm_attended_weeks_later_keeps_its_real_times(report_db: str) -> None:
    # Raised on 30 March, accepted at once, on site 21 days later (an alarm left open): the
    # steps long after the period are still read (a response time is never cut short).
    late = std("late", utc(2026, 3, 30, 12), 10, 21 * 86400, resolve=21 * 86400 + 600)
    quick = std("quick", utc(2026, 3, 30, 13), 20, 100, resolve=400)
    insert(report_db, [late, quick])
    everything = group(await run(report_db, scope()), "all", "all")
    assert (everything.counted, everything.arrived, everything.resolved) == (2, 2, 2)
    assert everything.attend.max == 21 * 86400.0
    assert everything.resolve.max == 21 * 86400 + 600.0
