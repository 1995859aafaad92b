"""Response targets per priority: two answering tiers and two attendance tiers.

Defaults are the industry's: the TSA answers 97.5 % of alarm calls within 60 s and 99 % within
180 s; councils want 90 % of mobile responses on site within 45 minutes and all within 60,
counted from the decision to deploy. A scheme overrides any of them per priority in the
``report_targets`` table (``telecare report targets``); '*' matches any scheme or priority and
the most specific row wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from devices.events import Priority


class Measure(StrEnum):
    ANSWER = "answer"  # raised -> first carer accepts
    ATTEND = "attend"  # decision to deploy -> first carer arrives


@dataclass(frozen=True, slots=True)
class Tier:
    within_s: int
    goal_pct: Decimal


DEFAULTS: dict[tuple[Measure, int], Tier] = {
    (Measure.ANSWER, 1): Tier(60, Decimal("97.5")),
    (Measure.ANSWER, 2): Tier(180, Decimal("99")),
    (Measure.ATTEND, 1): Tier(45 * 60, Decimal("90")),
    (Measure.ATTEND, 2): Tier(60 * 60, Decimal("100")),
}

PRIORITIES = tuple(Priority)


@dataclass(frozen=True, slots=True)
class Targets:
    """The tiers for each priority of one scheme."""

    tiers: dict[tuple[Priority, Measure, int], Tier]

    def tier(self, priority: Priority, measure: Measure, n: int) -> Tier:
        return self.tiers[(priority, measure, n)]

    def params(self) -> dict[str, list[Any]]:
        """Parallel arrays for the SQL (one element per priority)."""
        out: dict[str, list[Any]] = {"t_priority": [p.value for p in PRIORITIES]}
        for m, key in ((Measure.ANSWER, "a"), (Measure.ATTEND, "d")):
            for n in (1, 2):
                out[f"t_{key}{n}"] = [self.tier(p, m, n).within_s for p in PRIORITIES]
        return out


def resolve(scheme: str, rows: Iterable[tuple[str, str, str, int, int, Decimal]]) -> Targets:
    """The targets for ``scheme`` from ``report_targets`` rows (scheme, priority, measure,
    tier, within_s, goal_pct) over the defaults: an exact scheme beats '*', then an exact
    priority beats '*'."""
    best: dict[tuple[Priority, Measure, int], tuple[int, Tier]] = {}
    for row_scheme, row_priority, measure, tier, within_s, goal in rows:
        if row_scheme not in (scheme, "*"):
            continue
        rank = (2 if row_scheme == scheme else 0) + (1 if row_priority != "*" else 0)
        priorities = PRIORITIES if row_priority == "*" else (Priority(row_priority),)
        for p in priorities:
            key = (p, Measure(measure), int(tier))
            if key not in best or best[key][0] <= rank:
                best[key] = (rank, Tier(int(within_s), Decimal(goal)))
    tiers = {
        (p, m, n): best[(p, m, n)][1] if (p, m, n) in best else DEFAULTS[(m, n)]
        for p in PRIORITIES
        for (m, n) in DEFAULTS
    }
    return Targets(tiers)


DEFAULT_TARGETS = resolve("*", ())
