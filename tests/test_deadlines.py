"""The deadline heap: what is due, in a replayable order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from gateway.engine.deadlines import DeadlineHeap

T0 = datetime(2026, 12, 2, 2, 14, tzinfo=UTC)


def test_keys_due_at_the_same_instant_come_in_key_order_whatever_order_they_were_set() -> None:
    keys = [f"alarm-{i:03d}" for i in range(40)]
    orders = []
    for seed in range(5):
        shuffled = keys[:]
        random.Random(seed).shuffle(shuffled)
        heap: DeadlineHeap[str] = DeadlineHeap()
        for k in shuffled:
            heap.set(k, T0 + timedelta(seconds=int(k[-3:]) % 3))  # three instants, many ties
        orders.append(heap.due(T0 + timedelta(seconds=5)))
        heap.check()
    assert all(o == orders[0] for o in orders)
    assert orders[0] == sorted(orders[0])  # earliest first, then by key


def test_moved_and_discarded_deadlines() -> None:
    heap: DeadlineHeap[str] = DeadlineHeap()
    heap.set("a", T0 + timedelta(seconds=10))
    heap.set("b", T0 + timedelta(seconds=5))
    heap.set("a", T0 + timedelta(seconds=1))  # earlier
    heap.set("b", T0 + timedelta(seconds=20))  # later
    heap.set("c", T0)
    heap.discard("c")
    assert heap.first() == T0 + timedelta(seconds=1)
    assert heap.due(T0 + timedelta(seconds=10)) == [(T0 + timedelta(seconds=1), "a")]
    assert heap.due(T0 + timedelta(seconds=20), inclusive=False) == [
        (T0 + timedelta(seconds=1), "a")
    ]
    heap.discard("a")
    assert heap.due(T0 + timedelta(seconds=20)) == [(T0 + timedelta(seconds=20), "b")]
    heap.check()
