"""Scheme time shared with the gateway: read from ``GET /api/v1/clock``, never guessed.

Scheme time is ``anchor_scheme + (real - anchor_real) * speed``. Sleeping for ``s`` scheme
seconds takes ``s / speed`` real seconds; pure logic never sleeps.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from simulator.timekeeping import SlipMeter


@dataclass(frozen=True, slots=True)
class SimClock:
    speed: float
    anchor_real: float
    anchor_scheme: datetime
    # Measures how late every wait ran (the run's own clock slip); shared by copies.
    meter: SlipMeter | None = field(default=None, compare=False)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> SimClock:
        if body.get("anchor_real") is None or body.get("anchor_scheme") is None:
            # A real-time gateway: scheme time is wall-clock time.
            return cls(1.0, time.time(), datetime.now(UTC))
        return cls(
            float(body["speed"]),
            float(body["anchor_real"]),
            datetime.fromisoformat(str(body["anchor_scheme"])),
        )

    @classmethod
    def fetch(cls, base_url: str, headers: dict[str, str] | None = None) -> SimClock:
        r = httpx.get(f"{base_url}/api/v1/clock", timeout=5, headers=headers)
        r.raise_for_status()
        return cls.from_api(r.json())

    def now(self) -> datetime:
        return self.anchor_scheme + timedelta(seconds=(time.time() - self.anchor_real) * self.speed)

    def with_meter(self, meter: SlipMeter) -> SimClock:
        return replace(self, meter=meter)

    def real_seconds(self, scheme_seconds: float) -> float:
        return max(0.0, scheme_seconds / self.speed)

    def real_of(self, when: datetime) -> float:
        """The real (epoch) time at which scheme time reaches ``when``."""
        return self.anchor_real + (when - self.anchor_scheme).total_seconds() / self.speed

    async def sleep(self, scheme_seconds: float, source: str = "wait") -> float:
        """Sleep; returns how late (real seconds) it woke, and records it on the meter."""
        real = self.real_seconds(scheme_seconds)
        due = time.time() + real
        await asyncio.sleep(real)
        return self.meter.note(due, source) if self.meter is not None else 0.0

    async def sleep_until(self, when: datetime, source: str = "wait") -> float:
        due = self.real_of(when)
        await asyncio.sleep(max(0.0, due - time.time()))
        if self.meter is None:
            return max(0.0, time.time() - due)
        return self.meter.note(due, source)
