"""Did the run keep time? The simulator's own clock slip, and stretches of scheme time that
the machine (not the product) lost.

At x400 one real second is more than six scheme minutes, so a starved process looks like a
carer who never came. Every wait the simulator makes is measured against when it was due; any
lateness of at least ``stall_min_s`` scheme seconds is a *stall*: an interval of scheme time in
which the run did not keep time. The gateway's own stamps add stalls of its side (see
``simulator.verdict``). Timing checks are then judged only where stalls cannot have decided
them; invariants are judged regardless.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

# Lateness below this (scheme seconds) is ordinary scheduling noise, not a stall.
STALL_MIN_S = 5.0
PROBE_REAL_S = 0.05


class Intervals:
    """A set of closed intervals on a line (scheme epoch seconds), merged on demand. New
    intervals wait in a small list and are folded into the merged ones when next asked, so
    asking often (every drain poll) stays cheap however many were added."""

    def __init__(self) -> None:
        self._merged: list[tuple[float, float]] = []
        self._new: list[tuple[float, float]] = []

    def add(self, start: float, end: float) -> None:
        if end > start:
            self._new.append((start, end))

    def update(self, other: Intervals) -> None:
        self._new.extend(other.merged())

    def merged(self) -> list[tuple[float, float]]:
        if self._new:
            out: list[tuple[float, float]] = []
            for a, b in sorted(self._merged + self._new):
                if out and a <= out[-1][1]:
                    out[-1] = (out[-1][0], max(out[-1][1], b))
                else:
                    out.append((a, b))
            self._merged, self._new = out, []
        return self._merged

    def measure(self, start: float = -math.inf, end: float = math.inf) -> float:
        """Length of the union that lies within [start, end]."""
        total = 0.0
        for a, b in self.merged():
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total += hi - lo
        return total

    def longest(self) -> float:
        return max((b - a for a, b in self.merged()), default=0.0)

    def __len__(self) -> int:
        return len(self.merged())


@dataclass
class SlipMeter:
    """Lateness of every wait, by source, in real seconds; stalls in scheme time."""

    speed: float
    anchor_real: float
    anchor_scheme_s: float  # scheme epoch seconds at ``anchor_real``
    stall_min_s: float = STALL_MIN_S
    late: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    stalls: Intervals = field(default_factory=Intervals)

    def scheme_s(self, real: float) -> float:
        return self.anchor_scheme_s + (real - self.anchor_real) * self.speed

    def note(self, due_real: float, source: str, now_real: float | None = None) -> float:
        """Record that something due at ``due_real`` ran now; returns lateness (real s)."""
        now = time.time() if now_real is None else now_real
        late = max(0.0, now - due_real)
        self.late[source].append(late)
        if late * self.speed >= self.stall_min_s:
            self.stalls.add(self.scheme_s(due_real), self.scheme_s(now))
        return late

    async def probe(self) -> None:
        """The event loop's own heartbeat: catches stalls when nothing else is due."""
        while True:
            due = time.time() + PROBE_REAL_S
            await asyncio.sleep(PROBE_REAL_S)
            self.note(due, "loop")

    def summary(self) -> dict[str, object]:
        """Per source: waits measured, p99 and max lateness (real s); stalls overall."""
        out: dict[str, object] = {}
        worst = 0.0
        for source, values in sorted(self.late.items()):
            s = sorted(values)
            p99 = s[max(0, math.ceil(0.99 * len(s)) - 1)] if s else 0.0
            worst = max(worst, s[-1] if s else 0.0)
            out[source] = {
                "waits": len(s),
                "p99_real_s": round(p99, 3),
                "max_real_s": round(s[-1] if s else 0.0, 3),
            }
        return {
            "by_source": out,
            "max_slip_real_s": round(worst, 3),
            "max_slip_scheme_s": round(worst * self.speed, 1),
            "stalled_scheme_s": round(self.stalls.measure(), 1),
            "stalls": len(self.stalls),
        }
