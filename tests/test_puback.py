"""QoS 1 publishes that report the broker's answer, or its silence, without a task each."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

from gateway.puback import AckedPublisher


@dataclass
class _Info:
    rc: int
    mid: int


class _FakePaho:
    """Records publishes; the test answers them through ``on_publish`` as paho would."""

    def __init__(self) -> None:
        self.on_publish: Any = None
        self.sent: list[int] = []

    def publish(self, topic: str, payload: Any, qos: int) -> _Info:
        self.sent.append(len(self.sent) + 1)
        return _Info(paho.MQTT_ERR_SUCCESS, self.sent[-1])


@dataclass
class _FakeClient:
    _client: _FakePaho


async def test_answers_and_silence_are_told_apart() -> None:
    fake = _FakePaho()
    pub = AckedPublisher(_FakeClient(fake), timeout_s=0.05)  # type: ignore[arg-type]
    ok = asyncio.create_task(pub.publish("t", b"1"))
    refused = asyncio.create_task(pub.publish("t", b"2"))
    silent = asyncio.create_task(pub.publish("t", b"3"))
    await asyncio.sleep(0)  # each task publishes before its first await
    assert fake.sent == [1, 2, 3]
    fake.on_publish(None, None, 1, 0, None)
    fake.on_publish(None, None, 2, 0x87, None)
    assert (await ok).ok
    r = await refused
    assert not r.ok and r.code == 0x87 and r.label == "refused"
    s = await silent
    assert s.code is None and s.label == "unacknowledged" and "no PUBACK" in s.detail
    # Nothing is left waiting: a late PUBACK for the silent one is harmless.
    assert pub.in_flight == 0
    fake.on_publish(None, None, 3, 0, None)


async def test_a_publish_left_by_cancellation_leaves_no_timer_or_waiter() -> None:
    fake = _FakePaho()
    pub = AckedPublisher(_FakeClient(fake), timeout_s=30)  # type: ignore[arg-type]
    task = asyncio.create_task(pub.publish("t", b"1"))
    await asyncio.sleep(0)
    assert fake.sent == [1]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert pub.in_flight == 0
    loop = asyncio.get_running_loop()
    assert not [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
