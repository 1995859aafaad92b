"""Columns that give way by priority: every panel's table fits the width it is given."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PADDING = 2  # a DataTable's cell padding, one each side
CHROME = 4  # the panel's border and the scrollbar


@dataclass(frozen=True)
class Column:
    label: str
    key: str
    min: int
    max: int
    essential: bool = True


def plan(width: int, columns: Sequence[Column], grow: Sequence[str]) -> list[tuple[Column, int]]:
    """Which columns to show at ``width`` and how wide: the essentials at their minimum, then
    optional columns (in order) while they fit, then the spare room to ``grow``'s columns in
    order, each up to its maximum. Columns keep their order."""
    room = width - CHROME
    chosen = [c for c in columns if c.essential]
    used = sum(c.min + PADDING for c in chosen)
    for c in columns:
        if not c.essential and used + c.min + PADDING <= room:
            chosen.append(c)
            used += c.min + PADDING
    widths = {c.key: c.min for c in chosen}
    spare = max(room - used, 0)
    for key in grow:
        col = next((c for c in chosen if c.key == key), None)
        if col is None:
            continue
        more = min(spare, col.max - widths[key])
        widths[key] += more
        spare -= more
    return [(c, widths[c.key]) for c in columns if c in chosen]
