"""A broker ACL refuses one carer's dispatch topic: the offer is not marked sent, the control
room is told (naming the carer and the alarm), it is retried, and once the ACL is corrected and
the broker restarted it is delivered, with nothing overtaking it on that topic.

Private Mosquitto (own port, config from the shipped template plus an ACL file); the gateway
connects as user ``gateway``; the test's listener is anonymous and may read everything.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.events import DeviceEvent, EventKind
from devices.topics import TopicLayout
from tests.conftest import GatewayEnv, wait_for
from tests.engine_helpers import HZC, NIGHT, device_in
from tests.faults.private_broker import PrivateBroker
from tests.mqtt_helpers import presence

pytestmark = [
    pytest.mark.integration,
]

CARER = "cw-01"


def _acl(root: str, refuse: bool) -> str:
    lines = ["topic readwrite #", "", "user gateway", "topic readwrite #"]
    if refuse:
        lines.append(f"topic deny {root}/{HZC.id}/carers/{CARER}/dispatch")
    return "\n".join(lines) + "\n"


class Listener:
    """A persistent-session subscriber: the broker keeps its subscriptions (and queues for it)
    across a clean broker restart, so nothing published after the restart is missed."""

    def __init__(self, port: int, filters: list[str]) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fault-listener-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.reconnect_delay_set(0.1, 1.0)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()
        self.client.subscribe([(f, 1) for f in filters])
        assert subscribed.wait(10)

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def matching(self, topic_end: str, **match: object) -> list[dict[str, Any]]:
        with self._lock:
            return [
                b
                for t, b in self.messages
                if t.endswith(topic_end) and all(b.get(k) == v for k, v in match.items())
            ]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path: Path, gateway: GatewayEnv) -> Iterator[PrivateBroker]:
    acl = tmp_path / "broker.acl"
    acl.write_text(_acl(gateway.topic_root, refuse=True))
    b = PrivateBroker(tmp_path / "broker", extra=f"acl_file {acl}")
    b.start()
    yield b
    b.stop()


def _outbox_rows(journal: Path, topic: str) -> list[tuple[int, int]]:
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(
            "SELECT seq, sent FROM outbox WHERE topic = ? ORDER BY seq", (topic,)
        ).fetchall()
    finally:
        conn.close()


def test_refused_offer_is_raised_retried_and_delivered_once_allowed(
    broker: PrivateBroker, gateway: GatewayEnv, tmp_path: Path
) -> None:
    layout = TopicLayout(gateway.topic_root, gateway.zigbee_root)
    anchor = time.time()

    def now() -> datetime:
        return NIGHT + timedelta(seconds=time.time() - anchor)

    gateway.process.env.update(
        {
            "TELECARE_MQTT__PORT": str(broker.port),
            "TELECARE_MQTT__USERNAME": "gateway",
            # Real-time scheme clock at night: the 60 s offer timeout stays out of the way.
            "TELECARE_CLOCK__SPEED": "1",
            "TELECARE_CLOCK__START": NIGHT.isoformat(),
            "TELECARE_CLOCK__ANCHOR": str(anchor),
            "TELECARE_DELIVERY__RETRY_MIN_S": "0.5",
            "TELECARE_DELIVERY__RETRY_MAX_S": "2",
        }
    )
    dispatch = layout.carer(HZC.id, CARER, "dispatch")
    listener = Listener(broker.port, [dispatch, layout.control_alerts(HZC.id)])
    try:
        gateway.process.start()
        listener.client.publish(
            layout.carer(HZC.id, CARER, "presence"),
            json.dumps(presence("login", now(), flat="A-012")),
            qos=1,
        ).wait_for_publish(10)
        time.sleep(1.0)
        device = device_in("A-013")
        event = DeviceEvent(
            event_id=uuid.uuid4(),
            device_id=device,
            kind=EventKind.PENDANT_PRESS,
            occurred_at=now(),
        )
        listener.client.publish(
            layout.device_events(HZC.id, device), event.model_dump_json(), qos=1
        ).wait_for_publish(10)

        # The control room hears of it, naming the carer and the alarm.
        (alert,) = wait_for(
            lambda: listener.matching("/control/alerts", code="delivery_failed"),
            timeout=30,
            what="a delivery_failed alert",
        )
        assert alert["type"] == "delivery_failed" and alert["carer_id"] == CARER
        assert alert["reason_code"] == 135 and alert["topic"] == dispatch
        alarm_id = alert["alarm_id"]
        assert alarm_id and alarm_id in alert["message"] and CARER in alert["message"]
        # Retried, not marked sent, and not published to the carer.
        wait_for(
            lambda: gateway.process.metric("telecare_outbox_failures_total", result="refused") >= 3,
            timeout=30,
            what="three refused attempts",
        )
        rows = _outbox_rows(Path(gateway.process.env["TELECARE_JOURNAL__PATH"]), dispatch)
        assert rows and rows[0][1] == 0, rows
        assert listener.matching("/dispatch") == []
        # Raised once, not once per retry; and on record in TimescaleDB.
        assert len(listener.matching("/control/alerts", code="delivery_failed")) == 1
        wait_for(
            lambda: _notifications(gateway.dsn, alarm_id),
            timeout=30,
            what="the delivery_failed notification in TimescaleDB",
        )

        # The ACL is corrected; the broker restarts (clean stop: sessions saved).
        acl = broker.extra.removeprefix("acl_file ")
        Path(acl).write_text(_acl(gateway.topic_root, refuse=False))
        broker.stop()
        broker.start()
        offers = wait_for(
            lambda: listener.matching("/dispatch", type="offer", alarm_id=alarm_id),
            timeout=60,
            what="the offer delivered after the ACL fix",
        )
        assert len(offers) == 1
        wait_for(
            lambda: listener.matching("/control/alerts", code="delivery_recovered"),
            timeout=30,
            what="a delivery_recovered alert",
        )
        journal = Path(gateway.process.env["TELECARE_JOURNAL__PATH"])
        wait_for(
            lambda: all(sent == 1 for _, sent in _outbox_rows(journal, dispatch)),
            timeout=30,
            what="every dispatch row marked sent",
        )
        # Nothing to this carer overtook the offer.
        first = next(i for i, (_, b) in enumerate(listener.messages) if b.get("type") == "offer")
        before = [b for t, b in listener.messages[:first] if t == dispatch]
        assert before == []
    finally:
        listener.close()


def _notifications(dsn: str, alarm_id: str) -> list[tuple[Any, ...]]:
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            return conn.execute(
                "SELECT code, target FROM notifications WHERE kind = 'delivery'"
                " AND alarm_id = %s AND target = %s",
                (alarm_id, CARER),
            ).fetchall()
    except psycopg.Error:
        return []
