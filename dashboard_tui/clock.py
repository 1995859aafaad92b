"""Scheme time between polls, and how the control room reads times and durations.

The gateway may run an accelerated scheme clock (simulations), so ages come from its ``now``,
carried forward on our monotonic clock at its ``speed`` until the next reading.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo

from dashboard_tui.models import ClockReading


class SchemeClock:
    """The gateway's scheme time, extrapolated from the last reading."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._reading: ClockReading | None = None
        self._read_at = 0.0

    def update(self, reading: ClockReading) -> None:
        self._reading = reading
        self._read_at = self._monotonic()

    @property
    def speed(self) -> float | None:
        return self._reading.speed if self._reading else None

    def now(self) -> datetime | None:
        """Scheme time now, or None before the first reading."""
        if self._reading is None:
            return None
        elapsed = (self._monotonic() - self._read_at) * self._reading.speed
        return self._reading.now + timedelta(seconds=elapsed)


def duration(seconds: float) -> str:
    """A compact age: 45s, 3m05s, 1h02m."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def clock_time(when: datetime | None, tz: tzinfo) -> str:
    """HH:MM:SS in the control room's zone (gateway times are aware UTC)."""
    return when.astimezone(tz).strftime("%H:%M:%S") if when else "--:--:--"


def since(when: datetime | None, now: datetime | None) -> str:
    if when is None or now is None:
        return "never"
    return duration((now - when).total_seconds()) + " ago"
