"""In-process fan-out of carer dispatch messages to connected carer web pages (SSE)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any


class DispatchHub:
    """Each subscriber gets its own bounded queue; a page too slow to read is dropped and
    catches up from ``/carer/api/state`` when it reconnects (nothing is lost that way)."""

    def __init__(self, queue_size: int = 200) -> None:
        self._subs: dict[str, set[asyncio.Queue[dict[str, Any] | None]]] = {}
        self._ids = itertools.count(1)
        self.queue_size = queue_size

    def subscribe(self, key: str) -> asyncio.Queue[dict[str, Any] | None]:
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(self.queue_size)
        self._subs.setdefault(key, set()).add(q)
        return q

    def unsubscribe(self, key: str, q: asyncio.Queue[dict[str, Any] | None]) -> None:
        subs = self._subs.get(key)
        if subs is not None:
            subs.discard(q)
            if not subs:
                del self._subs[key]

    def publish(self, key: str, message: dict[str, Any]) -> None:
        message = {**message, "seq": next(self._ids)}
        for q in list(self._subs.get(key, ())):
            try:
                q.put_nowait(message)
            except asyncio.QueueFull:
                self.unsubscribe(key, q)  # its stream closes; the page reconnects and catches up

    def is_subscribed(self, key: str, q: asyncio.Queue[dict[str, Any] | None]) -> bool:
        return q in self._subs.get(key, ())

    def subscribers(self, key: str) -> int:
        return len(self._subs.get(key, ()))

    async def sse(self, key: str, event: str, keepalive_s: float = 15.0) -> AsyncIterator[str]:
        """Server-sent events for one subscriber; a ``ping`` event (visible to EventSource,
        unlike an SSE comment) every ``keepalive_s`` so a page can tell quiet from dead."""
        q = self.subscribe(key)
        try:
            yield "event: hello\ndata: {}\n\n"
            while self.is_subscribed(key, q):
                try:
                    async with asyncio.timeout(keepalive_s):  # not wait_for (3.11 cancels)
                        msg = await q.get()
                except TimeoutError:
                    yield "event: ping\ndata: {}\n\n"
                    continue
                if msg is None:
                    break
                data = json.dumps(msg, default=str)
                yield f"id: {msg['seq']}\nevent: {event}\ndata: {data}\n\n"
        finally:
            self.unsubscribe(key, q)
