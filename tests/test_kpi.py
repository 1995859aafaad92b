"""The KPI strip's figures: percentiles, target judgement, the night window and the hourly
sparkline, from alarm times (pure; the route reads them from TimescaleDB)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from gateway.kpi import AlarmTimes, figures, hourly, judged, night_window, percentile

LONDON = ZoneInfo("Europe/London")
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def alarm(
    raised_min: float, accept_s: float | None, arrive_s: float | None, p: str = "P1"
) -> AlarmTimes:
    r = T0 + timedelta(minutes=raised_min)
    return AlarmTimes(
        alarm_id=f"a{raised_min}",
        priority=p,
        raised=r,
        accepted=r + timedelta(seconds=accept_s) if accept_s is not None else None,
        arrived=r + timedelta(seconds=arrive_s) if arrive_s is not None else None,
    )


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([30.0], 0.9) == 30.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    assert percentile([float(x) for x in range(1, 11)], 0.9) == 9.1


@given(st.lists(st.floats(0, 10_000), min_size=1, max_size=50))
def test_median_and_p90_lie_within_the_values_and_in_order(values: list[float]) -> None:
    med, p90 = percentile(values, 0.5), percentile(values, 0.9)
    assert med is not None and p90 is not None
    assert min(values) - 0.1 <= med <= p90 <= max(values) + 0.1


def test_figures_for_a_night() -> None:
    rows = [
        alarm(0, 20, 200),  # on site in 200 s: within a 300 s target
        alarm(10, 40, 400),  # missed
        alarm(20, 60, None),  # accepted, not arrived, 10 min ago: missed
        alarm(28, None, None),  # 2 min old: not judged yet
        alarm(-600, 5, 50),  # before the window: not counted
    ]
    now = T0 + timedelta(minutes=30)
    f = figures("tonight", T0, T0 + timedelta(hours=5), rows, {"P1": 300}, now)
    assert (f.alarms, f.accepted, f.arrived) == (4, 3, 2)
    assert f.accept_median_s == 40.0 and f.arrive_median_s == 300.0
    assert f.judged == 3 and f.within_target_pct == 33.3


def test_cancelled_before_its_target_is_not_judged() -> None:
    a = AlarmTimes("x", "P1", T0, closed=T0 + timedelta(seconds=30))
    assert judged(a, 300, T0 + timedelta(hours=1)) is None
    assert judged(a, None, T0) is None


def test_night_window_crosses_midnight_and_by_day_is_last_night() -> None:
    at_night = datetime(2026, 11, 24, 2, 14, tzinfo=UTC)
    s, e = night_window(at_night, LONDON, time(23), time(7))
    assert (s, e) == (datetime(2026, 11, 23, 23, tzinfo=UTC), datetime(2026, 11, 24, 7, tzinfo=UTC))
    by_day = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert night_window(by_day, LONDON, time(23), time(7))[0] == s
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    assert night_window(late, LONDON, time(23), time(7))[0] == datetime(
        2026, 11, 24, 23, tzinfo=UTC
    )


def test_hourly_buckets_end_with_the_current_hour() -> None:
    now = T0 + timedelta(minutes=30)
    first, counts = hourly(
        [alarm(0, None, None), alarm(5, None, None), alarm(-30, None, None)], now, 3
    )
    assert first == T0 - timedelta(hours=2)
    assert counts == [0, 1, 2]
