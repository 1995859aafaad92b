"""Every task the simulator starts is owned here, so none can die unseen.

A failed task is counted by kind and its first message kept; the run reports each kind once
(never "Task exception was never retrieved" on stderr). Closing the owner cancels what is left
and waits for it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine
from typing import Any


class Owner:
    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.failures: Counter[str] = Counter()
        self.first_message: dict[str, str] = {}

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        t = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(t)
        t.add_done_callback(self._done)
        return t

    def _done(self, t: asyncio.Task[Any]) -> None:
        self.tasks.discard(t)
        if t.cancelled():
            return
        exc = t.exception()  # retrieving it here is what keeps asyncio quiet
        if exc is not None:
            self.record(exc)

    def record(self, exc: BaseException) -> None:
        kind = type(exc).__name__
        self.failures[kind] += 1
        self.first_message.setdefault(kind, str(exc)[:200] or kind)

    def summary(self) -> list[str]:
        """One line per kind of failure: how many, and the first message."""
        return [f"{n} x {k}: {self.first_message[k]}" for k, n in sorted(self.failures.items())]

    async def close(self) -> None:
        """Cancel every task still running and wait until they have all ended."""
        while self.tasks:
            pending = list(self.tasks)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
