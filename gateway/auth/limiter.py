"""A small sign-in limiter: failures per account and per address in a sliding window.

Counted per account *name*, whether or not it exists, so the limiter answers the same for an
unknown user as for a real one. In memory: a restart forgets the counts, which only gives a
guesser a handful more tries per restart of the gateway.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    account_failures: int = 5  # failed sign-ins per account name in the window
    address_failures: int = 20  # failed sign-ins from one address in the window
    window_s: float = 900.0
    max_keys: int = 10_000  # bounded memory under a spray of names or addresses


class SignInLimiter:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.limits.window_s:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def retry_after(self, account: str, address: str | None) -> float | None:
        """Seconds until another attempt is allowed, or None if allowed now."""
        now = self._clock()
        waits = []
        for key, cap in self._keys(account, address):
            q = self._recent(key, now)
            if len(q) >= cap:
                waits.append(q[len(q) - cap] + self.limits.window_s - now)
        return max(waits) if waits else None

    def failed(self, account: str, address: str | None) -> None:
        now = self._clock()
        for key, _cap in self._keys(account, address):
            q = self._failures.setdefault(key, deque())
            q.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.limits.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, account: str) -> None:
        """A right secret clears that account's failures (not the address's)."""
        self._failures.pop(f"account:{account}", None)

    def _keys(self, account: str, address: str | None) -> list[tuple[str, int]]:
        keys = [(f"account:{account}", self.limits.account_failures)]
        if address:
            keys.append((f"address:{address}", self.limits.address_failures))
        return keys
