"""A heap of deadlines by key, so finding what is due costs what is due, not the estate.

The engine keeps several: alarms' timers (offer timeout, escalation repeat...), device
supervision (last heard + the allowed silence), handset silence, and closed alarms waiting to
be dropped. Each key has at most one due time; the heap finds the earliest.

The shape follows psycopg_pool's ``sched_async`` (a heap of (time, seq, task) with lazy
removal), with one change for the engine's traffic: a device heard every minute moves its due
time later every minute, and pushing an entry each time would grow the heap with the traffic.
Instead each key keeps one *anchor* entry at or before its due time; moving the due time later
changes only the map, and the anchor is re-queued at the new time when it reaches the top.
Moving it earlier queues a new anchor (the old one is then stale and skipped).

The map (``pending``) is the truth; the heap is an index over it that any query may tidy.
Queries never change the map, so a query needs no undo in a transaction that fails.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class DeadlineHeap(Generic[K]):
    """Pending deadlines by key: ``set``, ``discard``, the earliest, and the ones due."""

    __slots__ = ("_anchor", "_due", "_heap", "_seq")

    def __init__(self) -> None:
        self._due: dict[K, datetime] = {}
        self._heap: list[tuple[datetime, int, K]] = []
        self._anchor: dict[K, tuple[datetime, int]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._due)

    @property
    def pending(self) -> Mapping[K, datetime]:
        """Every key with a deadline, and when (read-only)."""
        return self._due

    def get(self, key: K) -> datetime | None:
        return self._due.get(key)

    def set(self, key: K, due: datetime) -> None:
        self._due[key] = due
        anchor = self._anchor.get(key)
        if anchor is None or due < anchor[0]:
            self._push(key, due)

    def discard(self, key: K) -> None:
        self._due.pop(key, None)  # its anchor is dropped when it reaches the top

    def _push(self, key: K, due: datetime) -> None:
        seq = next(self._seq)
        heapq.heappush(self._heap, (due, seq, key))
        self._anchor[key] = (due, seq)

    def _settle(self) -> None:
        """Make the top entry a live one: drop stale anchors, re-queue moved ones."""
        h = self._heap
        while h:
            due, seq, key = h[0]
            if self._anchor.get(key) != (due, seq):
                heapq.heappop(h)  # superseded by an earlier anchor
                continue
            cur = self._due.get(key)
            if cur is None:
                heapq.heappop(h)
                del self._anchor[key]
                continue
            if cur != due:  # moved later since this anchor was queued
                seq = next(self._seq)
                heapq.heapreplace(h, (cur, seq, key))
                self._anchor[key] = (cur, seq)
                continue
            return

    def first(self) -> datetime | None:
        """The earliest due time, or None."""
        self._settle()
        return self._heap[0][0] if self._heap else None

    def due(self, limit: datetime, *, inclusive: bool = True) -> list[tuple[datetime, K]]:
        """Every (due, key) at or before ``limit`` (before it, if not ``inclusive``), earliest
        first, keys due at the same instant in key order (never in the order they were set,
        which can follow a set's hash order: a replay must fire them alike). They stay
        pending: the caller acts on each and sets or discards it."""
        out: list[tuple[datetime, K]] = []
        h = self._heap
        while True:
            self._settle()
            if not h:
                break
            due, _, key = h[0]
            if due > limit or (due == limit and not inclusive):
                break
            heapq.heappop(h)
            del self._anchor[key]
            out.append((due, key))
        for due, key in out:  # still pending: queue their anchors again
            self._push(key, due)
        out.sort(key=lambda dk: (dk[0], str(dk[1])))
        return out

    def check(self) -> None:
        """Raise AssertionError unless every pending key has a live anchor at or before its
        due time (the property tests call this)."""
        queued = {(due, seq, key) for due, seq, key in self._heap}
        for key, due in self._due.items():
            anchor = self._anchor.get(key)
            assert anchor is not None, f"{key!r} pending without an anchor"
            assert (anchor[0], anchor[1], key) in queued, f"{key!r} anchor not in the heap"
            assert anchor[0] <= due, f"{key!r} anchored after its due time"
