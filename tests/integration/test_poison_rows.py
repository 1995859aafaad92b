"""No input stops the record: every trigger that once halted shipping, each followed by a clean
pendant press whose rows must reach TimescaleDB; and a row the database itself refuses is
quarantined with its error while the rows behind it ship. Real Mosquitto, a real gateway
process, real TimescaleDB."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from devices.registry import DeviceType
from simulator.publisher import Publisher
from simulator.verdict import event_alarm_id
from tests.conftest import GatewayEnv, Services, wait_for
from tests.engine_helpers import HZC

pytestmark = pytest.mark.integration

PENDANTS = [d for d in HZC.devices if d.type is DeviceType.PENDANT and d.resident is not None]
HUB = next(d for d in HZC.devices if d.type is DeviceType.HUB)
RESIDENT = next(r.client_ref for r in HZC.residents)
CARER = HZC.carers[0].id


def q(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            return conn.execute(sql, args).fetchall()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return []  # not reachable yet, or the gateway has not migrated yet


def now() -> str:
    return datetime.now(UTC).isoformat()


def raw(fields: dict[str, str]) -> bytes:
    """JSON with raw fragments (NaN, 2**64-1, \\u0000) that json.dumps would not write."""
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}").encode()


def press(device: str, **extra: str) -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    fields = {
        "event_id": json.dumps(event_id),
        "device_id": json.dumps(device),
        "kind": '"pendant_press"',
        "occurred_at": json.dumps(now()),
        **extra,
    }
    return event_id, raw(fields)


class Traffic:
    def __init__(self, services: Services, gw: GatewayEnv) -> None:
        self.gw = gw
        self.root = gw.topic_root
        self.pub = Publisher(services.mqtt_host, services.mqtt_port)
        self.sent = 0

    def send(self, topic: str, payload: bytes) -> None:
        self.pub.publish(f"{self.root}/{HZC.id}/{topic}", payload)
        self.sent += 1

    def clean_press(self, device: str) -> str:
        event_id, payload = press(device)
        self.send(f"devices/{device}/events", payload)
        assert self.pub.wait_acked(self.sent, timeout=30)
        return event_id

    def wait_on_record(self, device: str, event_id: str) -> None:
        """The press is in device_events and its alarm's raised step in alarm_events."""
        alarm_id = event_alarm_id(HZC.id, device, event_id)
        dsn = self.gw.dsn
        wait_for(
            lambda: (
                q(dsn, "SELECT 1 FROM device_events WHERE event_id = %s::uuid", event_id)
                and q(
                    dsn,
                    "SELECT 1 FROM alarm_events WHERE alarm_id = %s::uuid AND step = 'raised'",
                    alarm_id,
                )
            ),
            timeout=60,
            what=f"the clean press from {device} and its alarm in TimescaleDB",
        )


def test_each_poison_trigger_is_followed_by_a_press_that_reaches_the_database(
    services: Services, gateway: GatewayEnv
) -> None:
    gateway.process.start()
    url = gateway.process.url
    t = Traffic(services, gateway)
    pendants = iter(PENDANTS)
    try:
        # 1. The documented control call (its row once had no carer_id for carer_messages).
        r = httpx.post(f"{url}/api/v1/devices/{HZC.id}/{HUB.device_id}/maintenance", json={})
        assert r.status_code == 202, r.text
        device = next(pendants).device_id
        t.wait_on_record(device, t.clean_press(device))
        assert q(gateway.dsn, "SELECT op, target FROM control_records") == [
            ("device_mode", HUB.device_id)
        ]

        cw = f"carers/{CARER}"
        triggers: list[tuple[str, str, bytes]] = [
            ("integer_out_of_range", "", press("x", seq=str(2**64 - 1))[1]),
            ("nul_character", "", press("x", detail='{"note": "a\\u0000b"}')[1]),
            ("unpaired_surrogate", "", press("x", detail='{"note": "\\ud800"}')[1]),
            (
                "non_finite_number",
                f"{cw}/presence",
                raw(
                    {
                        "presence_id": json.dumps(str(uuid.uuid4())),
                        "what": '"heartbeat"',
                        "at": json.dumps(now()),
                        "x": "NaN",
                        "y": "1",
                    }
                ),
            ),
            (
                "non_finite_number",
                f"{cw}/presence",
                raw(
                    {
                        "presence_id": json.dumps(str(uuid.uuid4())),
                        "what": '"heartbeat"',
                        "at": json.dumps(now()),
                        "x": "1",
                        "y": "Infinity",
                    }
                ),
            ),
            (
                "nul_character",
                f"{cw}/actions",
                raw(
                    {
                        "action_id": json.dumps(str(uuid.uuid4())),
                        "action": '"decline"',
                        "alarm_id": '"a-1"',
                        "note": '"key safe \\u0000"',
                        "at": json.dumps(now()),
                    }
                ),
            ),
            (
                "nul_character",
                "careline/callouts",
                raw(
                    {
                        "callout_id": '"ARC-9"',
                        "resident_ref": json.dumps(RESIDENT),
                        "reason": '"fallen"',
                        "priority": '"P1"',
                        "operator": '"op-1"',
                        "requested_at": json.dumps(now()),
                        "notes": '"door code \\u0000"',
                    }
                ),
            ),
            # Once a dead letter whose detail carried a NUL (an unknown key echoed back).
            ("nul_character", "", press("x", **{"col\x00our": '"red"'})[1]),
        ]
        for _reason, topic, payload in triggers:
            device = next(pendants).device_id
            body = payload.replace(b'"x"', json.dumps(device).encode())
            t.send(topic or f"devices/{device}/events", body)
            clean = next(pendants).device_id
            t.wait_on_record(clean, t.clean_press(clean))

        want: dict[str, int] = {}
        for reason, _, _ in triggers:
            want[reason] = want.get(reason, 0) + 1
        wait_for(
            lambda: q(gateway.dsn, "SELECT count(*) FROM dead_letters") == [(len(triggers),)],
            timeout=30,
            what=f"{len(triggers)} dead letters",
        )
        got = dict(q(gateway.dsn, "SELECT reason, count(*) FROM dead_letters GROUP BY 1"))
        assert got == want
        details = q(gateway.dsn, "SELECT detail FROM dead_letters")
        assert all("\x00" not in d for (d,) in details)
        assert q(gateway.dsn, "SELECT count(*) FROM ship_quarantine") == [(0,)]
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["database"] is True and ready["database_error"] is None
        assert all(s["quarantined"] == 0 for s in ready["shipping"].values())
        m = gateway.process.metric
        assert m("telecare_ingest_messages_total", result="dead_letter") == len(triggers)
        assert m("telecare_dead_letters_total", reason="internal_error") == 0
    finally:
        t.pub.close()


def test_a_row_the_database_refuses_is_quarantined_and_later_rows_ship(
    services: Services, gateway: GatewayEnv
) -> None:
    gateway.process.start()
    url = gateway.process.url
    wait_for(
        lambda: q(gateway.dsn, "SELECT 1 FROM schema_migrations WHERE name = '004_quarantine.sql'"),
        timeout=30,
        what="the gateway's migrations",
    )
    # A rule only the database knows: the protocol accepts this location, the table does not.
    with psycopg.connect(gateway.dsn, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE device_events ADD CONSTRAINT test_no_attic CHECK (location <> 'attic')"
        )
    t = Traffic(services, gateway)
    refused_device, clean_device = PENDANTS[0].device_id, PENDANTS[1].device_id
    try:
        refused_id, payload = press(refused_device, location='"attic"')
        t.send(f"devices/{refused_device}/events", payload)
        t.wait_on_record(clean_device, t.clean_press(clean_device))
    finally:
        t.pub.close()
    [(stream, kind, sqlstate, error, text)] = q(
        gateway.dsn, "SELECT stream, row_kind, sqlstate, error, row_text FROM ship_quarantine"
    )
    assert (stream, kind, sqlstate) == ("records", "event", "23514")
    assert "test_no_attic" in error and refused_id in text
    assert q(gateway.dsn, "SELECT 1 FROM device_events WHERE event_id = %s::uuid", refused_id) == []
    # The engine still raised the refused press's alarm: the journal, not the database, is
    # what dispatch runs on.
    alarm = event_alarm_id(HZC.id, refused_device, refused_id)
    assert q(gateway.dsn, "SELECT 1 FROM alarm_events WHERE alarm_id = %s::uuid", alarm)

    ready = httpx.get(f"{url}/readyz").json()
    assert ready["database"] is True and ready["database_error"] is None
    records = ready["shipping"]["records"]
    assert records["quarantined"] == 1 and "quarantined" in records["last_error"]
    ingest = httpx.get(f"{url}/api/v1/ingest").json()
    assert ingest["shipping"]["database_up"] is True
    assert ingest["shipping"]["streams"]["records"]["quarantined"] == 1
    assert ingest["shipping"]["streams"]["dead_letters"]["quarantined"] == 0
    m = gateway.process.metric
    assert m("telecare_shipper_quarantined_rows_total", stream="records") == 1
    assert m("telecare_db_up") == 1
