"""Reconnect policy: capped exponential backoff with jitter, so a fleet of control-room
screens does not reconnect to a restarted gateway in lock step."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_s: float = 1.0
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before trying again."""
        self.failures += 1
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (self.failures - 1))
        return ceiling * (0.5 + self.rng.random() / 2)

    def reset(self) -> None:
        self.failures = 0
