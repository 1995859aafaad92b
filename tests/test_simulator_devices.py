"""The simulator's devices and carers: resends until a receipt (the device side of the receipt
contract), carers' decisions from the seed alone, owned tasks."""

from __future__ import annotations

import asyncio
import random

import pytest

from simulator.outbox import CARELINE, FIRST_RESEND_S, RESEND_CAP_S, Outbox, backoff
from simulator.tasks import Owner


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_backoff_doubles_from_two_seconds_to_a_cap_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff(n, rng) for n in range(10)]
    assert FIRST_RESEND_S * 0.8 <= delays[0] <= FIRST_RESEND_S * 1.2
    assert 2 * FIRST_RESEND_S * 0.8 <= delays[1] <= 2 * FIRST_RESEND_S * 1.2
    assert all(x <= RESEND_CAP_S * 1.2 for x in delays)
    assert delays[-1] >= RESEND_CAP_S * 0.8  # reached the cap and stays there


def test_an_event_is_resent_with_the_same_payload_until_its_receipt() -> None:
    now = FakeTime()
    box = Outbox(seed=1, now=now)
    box.keep("hzc-a-001-pendant", "e1", "t/e", b"payload-1")
    assert box.due() == []
    now.t += 2.5
    (p,) = box.due()
    assert p.payload == b"payload-1" and p.topic == "t/e"
    now.t += 5
    assert len(box.due()) == 1
    box.on_receipt("hzc-a-001-pendant", {"v": 1, "event_id": "e1", "status": "accepted"})
    now.t += 100
    assert box.due() == []
    s = box.summary()
    assert s["resends"] == 2 and s["events_resent"] == 1 and s["unreceipted_at_end"] == 0
    assert s["receipts"] == {"accepted": 1} and s["gateway_sends_receipts"]


def test_refused_is_final_and_reported() -> None:
    now = FakeTime()
    box = Outbox(seed=1, now=now)
    box.keep(CARELINE, "co-1", "t/c", b"c")
    box.on_receipt(CARELINE, {"callout_id": "co-1", "status": "refused", "reason": "bad"})
    now.t += 100
    assert box.due() == []
    assert box.summary()["refused"] == [{"device": CARELINE, "id": "co-1", "reason": "bad"}]


def test_a_newer_heartbeat_supersedes_an_unreceipted_one() -> None:
    now = FakeTime()
    box = Outbox(seed=1, now=now)
    box.keep("hub-1", "h1", "t", b"1", heartbeat=True)
    box.keep("hub-1", "h2", "t", b"2", heartbeat=True)
    now.t += 3
    assert [p.payload for p in box.due()] == [b"2"]
    assert box.summary()["heartbeats_superseded"] == 1
    assert box.unreceipted() == 0  # heartbeats are not events the verdict waits for


def test_without_receipts_resends_stay_bounded() -> None:
    """A gateway without receipts only gets the capped trickle of duplicates."""
    now = FakeTime()
    box = Outbox(seed=2, now=now)
    box.keep("d", "e", "t", b"x")
    sent = 0
    for _ in range(600):  # ten minutes, polled every second
        now.t += 1
        sent += len(box.due())
    assert 20 <= sent <= 30  # ~2+4+8+16, then one every ~30 s


def test_carer_decisions_depend_on_the_seed_and_the_offer_only() -> None:
    from simulator.handsets import World

    w = World.__new__(World)
    w.seed = 7
    first = [w.decision("cw-01", "alarm-1", 1, "delay").random() for _ in range(3)]
    # Other decisions drawn in between (as another alarm arriving first would) change nothing.
    w.decision("cw-02", "alarm-9", 1, "delay").random()
    again = [w.decision("cw-01", "alarm-1", 1, "delay").random() for _ in range(3)]
    assert first == again
    assert w.decision("cw-01", "alarm-1", 2, "delay").random() != first[0]
    w.seed = 8
    assert w.decision("cw-01", "alarm-1", 1, "delay").random() != first[0]


async def _boom(msg: str) -> None:
    raise RuntimeError(msg)


def test_an_owner_collects_failures_once_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> Owner:
        o = Owner()
        for i in range(50):
            o.spawn(_boom(f"publish {i} timed out"))
        o.spawn(asyncio.sleep(60))
        await asyncio.sleep(0.01)
        await o.close()
        return o

    o = asyncio.run(main())
    assert o.failures == {"RuntimeError": 50}
    assert o.summary() == ["50 x RuntimeError: publish 0 timed out"]
    assert not o.tasks
    assert "never retrieved" not in caplog.text
