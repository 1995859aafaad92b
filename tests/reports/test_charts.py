"""The SVG charts on their own: an empty series draws no marks (and says so), values draw one
mark each, and axis tops are round numbers at or above the data."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gateway.reports import charts
from gateway.reports.charts import Series


def _points(svg: str) -> int:
    m = re.search(r'data-points="(\d+)"', svg)
    assert m is not None
    assert int(m.group(1)) == svg.count('class="datum"')
    return int(m.group(1))


def test_bars_draw_one_mark_per_value_and_none_for_missing() -> None:
    svg = charts.bars("x", "t", ["a", "b", "c"], [Series("s", [1.0, None, 3.0], "#000")])
    assert _points(svg) == 2
    empty = charts.bars("x", "t", ["a"], [Series("s", [None], "#000")])
    assert _points(empty) == 0


def test_lines_mark_each_known_week_and_escape_labels() -> None:
    svg = charts.lines(
        "w", "t", ["<w1>", "w2"], [Series("a&b", [50.0, None], "#000")], targets=[(90, "goal")]
    )
    assert _points(svg) == 1
    assert "<w1>" not in svg and "&lt;w1&gt;" in svg and "a&amp;b" in svg


@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False))
def test_axis_top_is_round_and_covers_the_data(top: float) -> None:
    nice = charts.nice_top(top)
    assert nice >= top * (1 - 1e-12)
    assert nice <= top * 10  # never absurdly far above
