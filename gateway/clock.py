"""Time for the gateway and the simulator: real, or a scheme clock running ``speed`` times faster.

A scaled clock is defined by an anchor (a real Unix time and the scheme time it maps to) and a
speed, so separate processes (gateway, simulator) and a restarted gateway agree on scheme time.
Deadlines are scheme times; sleeping for them takes ``(due - now) / speed`` real seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True, slots=True)
class Clock:
    speed: float = 1.0
    anchor_real: float | None = None  # Unix time when scheme time was ``anchor_scheme``
    anchor_scheme: datetime | None = None

    def now(self) -> datetime:
        if self.anchor_real is None or self.anchor_scheme is None:
            return datetime.now(UTC)
        return self.anchor_scheme + timedelta(seconds=(time.time() - self.anchor_real) * self.speed)

    def real_seconds(self, scheme_seconds: float) -> float:
        """How long to sleep (real) for ``scheme_seconds`` to pass on this clock."""
        return max(0.0, scheme_seconds / self.speed)


def scaled(speed: float, start: datetime | None, anchor_real: float | None = None) -> Clock:
    if speed == 1.0 and start is None:
        return Clock()
    return Clock(
        speed, anchor_real if anchor_real is not None else time.time(), start or datetime.now(UTC)
    )
