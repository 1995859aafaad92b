"""Broker SIGKILL with the gateway offline and a backlog, under the broker config we ship.

A private Mosquitto (own port, config from deploy/mosquitto/telecare-dev.conf.in, own
persistence directory) saves every 60 s, not on every change. The gateway connects once (so the
broker holds its session) and goes away; two groups of devices then send a backlog that the
broker acknowledges and queues for the gateway; the broker is killed with SIGKILL before its
first save, restarted on the same files, and the gateway comes back.

* Devices that keep each event until they hold a receipt (docs/protocol.md): every event ends up
  in TimescaleDB exactly once.
* The control group publishes once and trusts the broker's PUBACK: the events the broker had
  acknowledged but not saved are gone. That loss is what receipts prevent.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from devices.events import DeviceEvent, EventKind
from devices.scheme import load_scheme
from devices.topics import TopicLayout
from tests.conftest import SCHEME, GatewayEnv, wait_for
from tests.faults.private_broker import PrivateBroker
from tests.faults.resending_device import FireAndForget, ResendingDevices

pytestmark = [
    pytest.mark.integration,
]

N_RESENDING = 300
N_CONTROL = 300


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def _events(n: int, seed: int) -> list[DeviceEvent]:
    scheme = load_scheme(SCHEME)
    devices = [d for d in scheme.devices if d.zigbee_friendly_name is None]
    rng = random.Random(seed)
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        device = rng.choice(devices)
        kind = EventKind.PENDANT_PRESS if i % 50 == 0 else EventKind.HEARTBEAT
        out.append(
            DeviceEvent(
                event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
                device_id=device.device_id,
                kind=kind,
                occurred_at=now,
            )
        )
    return out


def _rows_per_event(dsn: str, ids: list[str]) -> dict[str, int]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT event_id::text, count(*) FROM device_events"
            " WHERE event_id::text = ANY(%s) GROUP BY 1",
            (ids,),
        ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def test_resending_devices_lose_nothing_when_the_broker_is_killed(
    broker: PrivateBroker, gateway: GatewayEnv
) -> None:
    scheme = load_scheme(SCHEME).id
    layout = TopicLayout(gateway.topic_root, gateway.zigbee_root)
    gateway.process.env["TELECARE_MQTT__PORT"] = str(broker.port)

    # The gateway's session exists on the broker; then the gateway is away (crash, upgrade).
    gateway.process.start()
    gateway.process.stop()
    db_file = broker.workdir / "data" / "mosquitto.db"

    resending = ResendingDevices("127.0.0.1", broker.port, layout, scheme, seed=1)
    control = FireAndForget("127.0.0.1", broker.port, layout)
    kept = _events(N_RESENDING, seed=11)
    trusted = _events(N_CONTROL, seed=12)
    try:
        wait_for(resending.client.is_connected, 10, what="resending devices connected")
        for a, b in zip(kept, trusted, strict=True):
            resending.send(scheme, a)
            control.send(scheme, b)
        assert control.wait_acked(60), "the broker did not acknowledge the control backlog"
        # Every control event was PUBACKed: the broker had taken responsibility for it.
        saved_before_kill = db_file.exists()
        broker.kill()
        broker.start()  # same port, config and persistence directory

        gateway.process.start()
        wait_for(
            lambda: resending.waiting() == 0,
            timeout=120,
            interval=0.5,
            what=f"receipts for all {N_RESENDING} resent events",
        )
        statuses = {r["status"] for r in resending.receipts.values()}
        assert statuses <= {"accepted", "duplicate"}, statuses

        kept_ids = [str(e.event_id) for e in kept]
        rows = wait_for(
            lambda: (r := _rows_per_event(gateway.dsn, kept_ids)) and len(r) == N_RESENDING and r,
            timeout=120,
            what="every resent event in TimescaleDB",
        )
        # Whatever the broker still had is redelivered by now; nothing twice.
        time.sleep(2.0)
        rows = _rows_per_event(gateway.dsn, kept_ids)
        assert len(rows) == N_RESENDING and set(rows.values()) == {1}, "lost or duplicated"

        trusted_ids = [str(e.event_id) for e in trusted]
        on_record = _rows_per_event(gateway.dsn, trusted_ids)
        lost = N_CONTROL - len(on_record)
        print(
            f"\nbroker SIGKILL: resending devices {N_RESENDING}/{N_RESENDING} on record"
            f" ({resending.sends} sends); fire-and-forget {len(on_record)}/{N_CONTROL}"
            f" on record, {lost} lost; broker had saved before the kill: {saved_before_kill}"
        )
        assert set(on_record.values()) <= {1}
        # The control group shows the loss receipts prevent. The broker's first periodic save
        # is 60 s after it starts; this run kills it within seconds, so nothing was saved.
        assert not saved_before_kill, "the broker saved before the kill; the run took too long"
        assert lost > 0
    finally:
        resending.close()
        control.close()
