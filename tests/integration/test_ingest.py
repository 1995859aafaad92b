"""Durable ingest end to end: real Mosquitto, a real gateway process, real TimescaleDB."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from api_models import Role
from devices.scheme import load_scheme
from devices.topics import TopicLayout
from simulator.publisher import Publisher, event_stream
from tests.conftest import SCHEME, GatewayEnv, Services, wait_for
from tests.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.integration


def count(dsn: str, sql: str = "SELECT count(*), count(DISTINCT event_id) FROM device_events"):  # type: ignore[no-untyped-def]
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            return conn.execute(sql).fetchone()
    except psycopg.OperationalError:
        return None


def publish_stream(
    services: Services, gw: GatewayEnv, n: int, seed: int, rate: float = 0
) -> Publisher:
    scheme = load_scheme(SCHEME)
    layout = TopicLayout(gw.topic_root, gw.zigbee_root)
    pub = Publisher(services.mqtt_host, services.mqtt_port)
    started = time.monotonic()
    for i, out in enumerate(event_stream(scheme, n, seed, layout)):
        pub.publish(out.topic, out.payload())
        if rate:
            time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
    return pub


def test_ten_thousand_events_land_once_in_a_hypertable(
    services: Services, gateway: GatewayEnv
) -> None:
    gateway.process.start()
    pub = publish_stream(services, gateway, 10_000, seed=10)
    try:
        assert pub.wait_acked(10_000, timeout=120), "broker did not acknowledge every publish"
    finally:
        pub.close()
    rows = wait_for(
        lambda: (c := count(gateway.dsn)) and c[0] >= 10_000 and c,
        timeout=120,
        what="10,000 rows in device_events",
    )
    time.sleep(1.0)  # anything extra would have arrived by now
    assert count(gateway.dsn) == (10_000, 10_000)
    assert rows == (10_000, 10_000)
    hyper = count(
        gateway.dsn,
        "SELECT count(*) FROM timescaledb_information.hypertables"
        " WHERE hypertable_name = 'device_events'",
    )
    assert hyper == (1,)
    assert gateway.process.metric("telecare_ingest_messages_total", result="accepted") == 10_000
    assert gateway.process.metric("telecare_shipper_lag_events", stream="records") == 0


def test_bad_input_is_dead_lettered_with_reason_and_counted(
    services: Services, gateway: GatewayEnv
) -> None:
    gateway.process.start()
    scheme = load_scheme(SCHEME)
    device = next(d for d in scheme.devices if d.zigbee_friendly_name is None)
    layout = TopicLayout(gateway.topic_root, gateway.zigbee_root)
    topic = layout.device_events(scheme.id, device.device_id)

    def body(**over: object) -> bytes:
        b: dict[str, object] = {
            "event_id": str(uuid.uuid4()),
            "device_id": device.device_id,
            "kind": "pendant_press",
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        b.update(over)
        return json.dumps(b).encode()

    good = body()
    sent = [
        (topic, b'{"event_id": '),  # malformed JSON
        (topic, body(battery_pct="lots")),  # wrong type
        (topic, body(detail={"blob": "x" * 8000})),  # oversized (limit 4096 in tests)
        (layout.device_events(scheme.id, "no-such-device"), body(device_id="no-such-device")),
        (f"{gateway.topic_root}/{scheme.id}/devices/{device.device_id}/evnts", body()),
        (topic, good),
        (topic, good),  # duplicate event_id
    ]
    pub = Publisher(services.mqtt_host, services.mqtt_port)
    try:
        for t, p in sent:
            pub.publish(t, p)
        assert pub.wait_acked(len(sent), timeout=30)
    finally:
        pub.close()

    expected = {
        "malformed_json": 1,
        "invalid_payload": 1,
        "oversized": 1,
        "unknown_device": 1,
        "wrong_topic": 1,
    }
    got = wait_for(
        lambda: (
            (
                rows := count(
                    gateway.dsn,
                    "SELECT json_object_agg(reason, n) FROM (SELECT reason, count(*) n"
                    " FROM dead_letters GROUP BY reason) r",
                )
            )
            and rows[0]
            and len(rows[0]) == len(expected)
            and rows[0]
        ),
        timeout=30,
        what="five dead letters",
    )
    assert got == expected
    assert count(gateway.dsn) == (1, 1)
    m = gateway.process.metric
    for reason in expected:
        assert m("telecare_dead_letters_total", reason=reason) == 1, reason
    assert m("telecare_ingest_messages_total", result="dead_letter") == 5
    assert m("telecare_ingest_messages_total", result="duplicate") == 1
    assert m("telecare_ingest_messages_total", result="accepted") == 1
    oversized = count(
        gateway.dsn,
        "SELECT payload_size, length(payload) FROM dead_letters WHERE reason='oversized'",
    )
    assert oversized is not None and oversized[0] > 8000 and oversized[1] <= 2048
    # The loop is still alive and the API explains what happened.
    assert httpx.get(f"{gateway.process.url}/readyz").status_code == 200
    api = gateway.process.api(Role.CONTROL_ROOM).get("/api/v1/dead-letters").json()
    assert {r["reason"] for r in api} == set(expected)


def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    services: Services, gateway: GatewayEnv
) -> None:
    n = 5_000
    gateway.process.start()
    result: dict[str, Publisher] = {}
    publisher = threading.Thread(
        target=lambda: result.setdefault("pub", publish_stream(services, gateway, n, 5, 1000))
    )
    publisher.start()
    wait_for(
        lambda: gateway.process.metric("telecare_ingest_messages_total", result="accepted") > 1000,
        timeout=60,
        interval=0.05,
        what="a thousand events through the gateway",
    )
    gateway.process.kill(signal.SIGKILL)
    killed_at = count(gateway.dsn)
    publisher.join(timeout=60)
    pub = result["pub"]
    try:
        assert pub.wait_acked(n, timeout=60)
    finally:
        pub.close()
    assert killed_at is not None and killed_at[0] < n, "the kill must land mid-stream"
    gateway.process.start()
    wait_for(
        lambda: (c := count(gateway.dsn)) and c[0] >= n, timeout=120, what=f"{n} rows after restart"
    )
    time.sleep(1.0)
    assert count(gateway.dsn) == (n, n)


def test_database_outage_of_twenty_seconds_loses_nothing(
    services: Services, gateway: GatewayEnv
) -> None:
    n = 2_500
    # The gateway reaches its database through a proxy the test cuts: to the gateway that is a
    # database gone away (connections reset, new ones refused), and the shared server other
    # tests use stays up.
    db = urlsplit(gateway.dsn)
    proxy = CuttableProxy(db.hostname or "127.0.0.1", db.port or 5432)
    via_proxy = db._replace(netloc=db.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{proxy.port}")
    gateway.process.env["TELECARE_DB__DSN"] = urlunsplit(via_proxy)
    gateway.process.start()
    result: dict[str, Publisher] = {}
    publisher = threading.Thread(
        target=lambda: result.setdefault("pub", publish_stream(services, gateway, n, 7, 100))
    )
    publisher.start()
    try:
        time.sleep(2)
        proxy.cut()
        stopped = time.monotonic()
        accepted_at_stop = gateway.process.metric(
            "telecare_ingest_messages_total", result="accepted"
        )
        wait_for(lambda: gateway.process.metric("telecare_db_up") == 0, 15, what="db_up == 0")
        # The gateway stays ready and keeps journaling while the database is away.
        ready = httpx.get(f"{gateway.process.url}/readyz").json()
        assert ready["ready"] is True and ready["database"] is False
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
        accepted_during = (
            gateway.process.metric("telecare_ingest_messages_total", result="accepted")
            - accepted_at_stop
        )
        assert accepted_during > 1000
        assert gateway.process.metric("telecare_shipper_lag_events", stream="records") > 0
    finally:
        proxy.restore()
    publisher.join(timeout=60)
    pub = result["pub"]
    try:
        assert pub.wait_acked(n, timeout=60)
    finally:
        pub.close()
    wait_for(lambda: (c := count(gateway.dsn)) and c[0] >= n, timeout=90, what=f"{n} rows")
    time.sleep(1.0)
    assert count(gateway.dsn) == (n, n)
    wait_for(lambda: gateway.process.metric("telecare_db_up") == 1, 15, what="db_up == 1")
    proxy.close()
