"""Scheme time shared with the gateway: read from ``GET /api/v1/clock``, never guessed.

Scheme time is ``anchor_scheme + (real - anchor_real) * speed``. Sleeping for ``s`` scheme
seconds takes ``s / speed`` real seconds; pure logic never sleeps.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class SimClock:
    speed: float
    anchor_real: float
    anchor_scheme: datetime

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

    def real_seconds(self, scheme_seconds: float) -> float:
        return max(0.0, scheme_seconds / self.speed)

    async def sleep(self, scheme_seconds: float) -> None:
        await asyncio.sleep(self.real_seconds(scheme_seconds))

    async def sleep_until(self, when: datetime) -> None:
        await self.sleep((when - self.now()).total_seconds())
