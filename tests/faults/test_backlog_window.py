"""A backlog drains through a window of fixed size: the gateway's MQTT 5 Receive Maximum.

A private Mosquitto queues a backlog for a gateway that is away; the gateway comes back with a
Receive Maximum of 50. Since it acknowledges only after the journal commit, it must never hold
more than that window unacknowledged, however large the backlog: that bound is what keeps a
100,000-event backlog from growing its memory. Every event must still land once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devices.scheme import load_scheme
from devices.topics import TopicLayout
from simulator.publisher import Publisher, event_stream
from tests.conftest import SCHEME, GatewayEnv, wait_for
from tests.faults.private_broker import PrivateBroker

pytestmark = [
    pytest.mark.integration,
]

N = 5_000
WINDOW = 50


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def _count(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM device_events"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_a_backlog_drains_through_the_receive_maximum_window(
    broker: PrivateBroker, gateway: GatewayEnv
) -> None:
    gateway.process.env.update(
        {
            "TELECARE_MQTT__PORT": str(broker.port),
            "TELECARE_INGEST__RECEIVE_MAXIMUM": str(WINDOW),
        }
    )
    gateway.process.start()
    gateway.process.stop()  # the broker keeps its session and queues for it

    layout = TopicLayout(gateway.topic_root, gateway.zigbee_root)
    pub = Publisher("127.0.0.1", broker.port)
    try:
        for out in event_stream(load_scheme(SCHEME), N, 21, layout):
            pub.publish(out.topic, out.payload())
        assert pub.wait_acked(N, timeout=120), "the broker did not take the backlog"
    finally:
        pub.close()

    gateway.process.start()
    m = gateway.process.metric
    wait_for(
        lambda: m("telecare_ingest_messages_total", result="accepted") >= N,
        timeout=180,
        interval=0.5,
        what=f"{N} events journaled",
    )
    peak = m("telecare_ingest_in_flight_peak")
    pauses = m("telecare_ingest_read_pauses_total")
    print(
        f"\nbacklog of {N}: at most {peak:.0f} unacknowledged (Receive Maximum {WINDOW}),"
        f" reading paused {pauses:.0f} times"
    )
    # The gateway's own window holds even where the broker overshoots its Receive Maximum
    # (Mosquitto 2.0.11 does, to more than 1,300 here without it).
    assert 1 < peak <= WINDOW
    wait_for(lambda: _count(gateway.dsn)[0] >= N, timeout=120, what="every event in TimescaleDB")
    time.sleep(1.0)
    assert _count(gateway.dsn) == (N, N)
