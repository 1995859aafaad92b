"""The outbox publisher against a broker that refuses: a real journal, a scripted publisher.

The broker is faked here (a publisher that answers with chosen PUBACK reason codes); the fault
run ``tests/faults/test_refused_publish.py`` does the same against a real Mosquitto ACL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devices.topics import TopicLayout
from gateway.clock import Clock
from gateway.config import DeliverySettings
from gateway.dispatch_hub import DispatchHub
from gateway.journal import EngineCommit, EngineStore, Journal
from gateway.metrics import Metrics
from gateway.outbox import OutboxPublisher
from gateway.puback import PublishOutcome

L = TopicLayout("tc", "z2m")
NOW = datetime(2026, 11, 22, 2, 14, tzinfo=UTC)
CW1 = L.carer("s1", "cw-01", "dispatch")
CW2 = L.carer("s1", "cw-02", "dispatch")


class ScriptedBroker:
    """Refuses (0x87) every publish to the topics in ``refuse``; records what it accepted."""

    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.accepted: list[tuple[str, dict[str, object]]] = []
        self.attempts: dict[str, int] = {}

    async def publish(self, topic: str, payload: str | bytes) -> PublishOutcome:
        self.attempts[topic] = self.attempts.get(topic, 0) + 1
        if topic in self.refuse:
            return PublishOutcome(0x87, "refused by the broker: not authorised (135)")
        self.accepted.append((topic, json.loads(payload)))
        return PublishOutcome(0, "ok")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EngineStore]:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.open()
    yield EngineStore(journal)
    journal.close()


def _outbox(store: EngineStore, writer: ThreadPoolExecutor, rows: list[tuple[str, dict]]) -> None:  # type: ignore[type-arg]
    commit = EngineCommit(0, {}, [], [(t, json.dumps(b)) for t, b in rows], [])
    writer.submit(store.commit, commit, NOW).result()


async def _until(pred, what: str, limit_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + limit_s
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _sent(store: EngineStore) -> dict[int, int]:
    return dict(store.journal._read("SELECT seq, sent FROM outbox"))  # type: ignore[arg-type]


async def test_refused_offer_is_retried_alerted_and_sent_once_allowed(store: EngineStore) -> None:
    writer = ThreadPoolExecutor(1)
    metrics = Metrics()
    hub = DispatchHub()
    alerts = hub.subscribe("control/*")
    broker = ScriptedBroker()
    broker.refuse.add(CW1)
    out = OutboxPublisher(
        store,
        writer,
        metrics,
        hub,
        L,
        Clock(),
        DeliverySettings(retry_min_s=0.05, retry_max_s=0.2, max_attempts=1000),
    )
    _outbox(
        store,
        writer,
        [
            (CW1, {"type": "offer", "alarm_id": "a-1", "offer_id": "o-1", "priority": "P1"}),
            (CW1, {"type": "cancel", "alarm_id": "a-1", "offer_id": "o-1"}),
            (CW2, {"type": "offer", "alarm_id": "a-1", "offer_id": "o-2", "priority": "P1"}),
        ],
    )
    task = asyncio.create_task(out.drain(broker, lambda: True))
    try:
        await _until(lambda: broker.attempts.get(CW1, 0) >= 3, "three refused attempts")
        # Another carer's message is not held up; the refused offer and the cancel behind it
        # are not sent, and the cancel was never published ahead of its offer.
        assert [t for t, _ in broker.accepted if t != L.control_alerts("s1")] == [CW2]
        assert _sent(store)[1] == 0 and _sent(store)[2] == 0
        raised = [alerts.get_nowait() for _ in range(alerts.qsize())]
        # Both messages of the first batch were refused: one alert each, not one per retry.
        assert [a["message"].split()[0] for a in raised] == ["offer", "cancel"]
        first = raised[0]
        assert first["type"] == "delivery_failed" and first["code"] == "delivery_failed"
        assert (first["carer_id"], first["alarm_id"], first["priority"]) == ("cw-01", "a-1", "P1")
        assert first["reason_code"] == 0x87 and "cw-01" in first["message"]
        await _until(lambda: broker.attempts.get(CW1, 0) >= 6, "more refused attempts")
        assert alerts.empty()
        # Also on the control alerts topic, and on record.
        await _until(
            lambda: sum(t == L.control_alerts("s1") for t, _ in broker.accepted) == 2, "MQTT alerts"
        )
        logged = store.read_log(0, 10)
        assert [r.body["code"] for r in logged] == ["delivery_failed"] * 2
        assert metrics.outbox_failures.labels("refused")._value.get() >= 3

        broker.refuse.clear()  # the ACL is corrected
        await _until(lambda: _sent(store).get(2) == 1, "the cancel sent after its offer")
        order = [b.get("type") for t, b in broker.accepted if t == CW1]
        assert order == ["offer", "cancel"]
        await _until(lambda: alerts.qsize() == 2, "recovered alerts")
        assert {alerts.get_nowait()["code"] for _ in range(2)} == {"delivery_recovered"}
        assert out.retry == {}
    finally:
        task.cancel()
        writer.shutdown()


async def test_a_row_refused_too_often_is_given_up_and_said_so(store: EngineStore) -> None:
    writer = ThreadPoolExecutor(1)
    hub = DispatchHub()
    alerts = hub.subscribe("control/s1")
    broker = ScriptedBroker()
    broker.refuse.add(CW1)
    out = OutboxPublisher(
        store,
        writer,
        Metrics(),
        hub,
        L,
        Clock(),
        DeliverySettings(retry_min_s=0.01, retry_max_s=0.02, max_attempts=3),
    )
    _outbox(store, writer, [(CW1, {"type": "reminder", "alarm_id": "a-9"})])
    task = asyncio.create_task(out.drain(broker, lambda: True))
    try:
        await _until(lambda: _sent(store).get(1) == 2 and alerts.qsize() == 2, "row abandoned")
        assert broker.attempts[CW1] == 3
        codes = []
        while not alerts.empty():
            codes.append(alerts.get_nowait()["code"])
        assert codes == ["delivery_failed", "delivery_abandoned"]
        assert out.metrics.outbox_abandoned._value.get() == 1
    finally:
        task.cancel()
        writer.shutdown()


async def test_unacknowledged_is_not_sent(store: EngineStore) -> None:
    writer = ThreadPoolExecutor(1)

    class Silent:
        async def publish(self, topic: str, payload: str | bytes) -> PublishOutcome:
            return PublishOutcome(None, "no PUBACK within 10s")

    out = OutboxPublisher(
        store,
        writer,
        Metrics(),
        DispatchHub(),
        L,
        Clock(),
        DeliverySettings(retry_min_s=0.01, retry_max_s=0.02, max_attempts=1000),
    )
    _outbox(store, writer, [(L.careline_status("s1", "ARC-1"), {"status": "accepted"})])
    task = asyncio.create_task(out.drain(Silent(), lambda: True))
    try:
        await _until(
            lambda: out.metrics.outbox_failures.labels("unacknowledged")._value.get() >= 2,
            "two unacknowledged attempts",
        )
        assert _sent(store)[1] == 0
    finally:
        task.cancel()
        writer.shutdown()
