"""For any small event log, the SQL's percentiles and within-target counts equal a plain
Python model of the documented definitions (percentile_disc; within means <=; cancelled and
false alarms excluded; an alarm never answered stays in the denominator)."""

from __future__ import annotations

import asyncio
import itertools
import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.reports import figures
from gateway.reports.scope import PeriodKind, Scope, period
from gateway.reports.targets import DEFAULT_TARGETS
from tests.reports.lifecycle import Spec, insert

pytestmark = pytest.mark.integration

_SCHEMES = itertools.count()
DAY = datetime(2026, 6, 10, 8, tzinfo=UTC)  # 09:00 BST, all within one local day

alarm = st.fixed_dictionaries(
    {
        "priority": st.sampled_from(["P0", "P1", "P2", "P3"]),
        # milliseconds; exact boundaries (60 s, 180 s, 45 and 60 min) drawn often
        "accept_ms": st.one_of(
            st.none(),
            st.sampled_from([59_999, 60_000, 60_001, 180_000, 180_001]),
            st.integers(0, 400_000),
        ),
        "attend_ms": st.one_of(
            st.none(),
            st.sampled_from([2_700_000, 2_700_001, 3_600_000, 3_600_001]),
            st.integers(0, 5_000_000),
        ),
        "end": st.sampled_from(["open", "resolved", "false", "cancelled"]),
    }
)


def disc(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return v[max(0, math.ceil(p * len(v)) - 1)]


def spec(i: int, scheme: str, a: dict[str, object]) -> Spec:
    received = DAY + timedelta(minutes=i)
    steps: list[tuple[str, float]] = [("offered", 0.5)]
    accept, attend = a["accept_ms"], a["attend_ms"]
    if a["end"] == "cancelled":
        steps.append(("cancelled", 5))
    elif accept is not None:
        assert isinstance(accept, int)
        steps.append(("accepted", accept / 1000))
        if attend is not None:
            assert isinstance(attend, int)
            steps.append(("arrived", 0.5 + attend / 1000))
            if a["end"] in ("resolved", "false"):
                steps.append(("resolved", 0.5 + attend / 1000 + 60))
    outcome = "false_alarm" if a["end"] == "false" else "assisted"
    return Spec(
        f"x{scheme}-{i}",
        received,
        priority=str(a["priority"]),
        scheme=scheme,
        steps=steps,
        outcome=outcome,
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(alarm, min_size=1, max_size=25))
def test_sql_equals_the_documented_definitions(
    report_db: str, alarms: list[dict[str, object]]
) -> None:
    scheme = f"prop-{next(_SCHEMES)}"
    specs = [spec(i, scheme, a) for i, a in enumerate(alarms)]
    insert(report_db, specs)
    sc = Scope(
        scheme_id=scheme,
        scheme_name=scheme,
        tz=ZoneInfo("Europe/London"),
        night_start=time(23),
        night_end=time(7),
        period=period(PeriodKind.DAY, date(2026, 6, 10)),
        targets=DEFAULT_TARGETS,
    )

    async def go() -> figures.ResponseReport:
        async with await psycopg.AsyncConnection.connect(report_db) as conn:
            return await figures.response(conn, sc)

    report = asyncio.run(go())
    for dim, value, members in [("all", "all", specs)] + [
        ("priority", p, [s for s in specs if s.priority == p])
        for p in sorted({s.priority for s in specs})
    ]:
        g = next(x for x in report.groups if x.dimension == dim and x.value == value)
        counted = [
            s
            for s in members
            if not s.at("cancelled") and not (s.outcome == "false_alarm" and s.at("resolved"))
        ]
        acc = [(s.at("accepted") - s.received).total_seconds() for s in counted if s.at("accepted")]  # type: ignore[operator]
        att = [
            (s.at("arrived") - s.at("offered")).total_seconds()  # type: ignore[operator]
            for s in counted
            if s.at("arrived")
        ]
        assert g.counted == len(counted)
        assert (g.accept.p50, g.accept.p90, g.accept.p95, g.accept.max) == (
            disc(acc, 0.5),
            disc(acc, 0.9),
            disc(acc, 0.95),
            max(acc, default=None),
        )
        assert (g.attend.p50, g.attend.max) == (disc(att, 0.5), max(att, default=None))
        assert [w.met for w in g.answer_within] == [
            sum(1 for a in acc if a <= 60),
            sum(1 for a in acc if a <= 180),
        ]
        assert [w.met for w in g.attend_within] == [
            sum(1 for a in att if a <= 2700),
            sum(1 for a in att if a <= 3600),
        ]
        assert all(w.of == len(counted) for w in g.answer_within)
