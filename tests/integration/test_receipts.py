"""Receipts end to end: real Mosquitto, a real gateway process; every device event and call-out
gets one after the journal commit, with the right status, reason, id and heartbeat interval."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from devices.receipts import CalloutReceipt, DeviceReceipt
from devices.scheme import load_scheme
from devices.topics import TopicLayout
from tests.conftest import SCHEME, GatewayEnv, Services, wait_for
from tests.mqtt_helpers import Received, Recorder

pytestmark = pytest.mark.integration


def _event(device_id: str, **over: object) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "device_id": device_id,
        "kind": "pendant_press",
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    body.update(over)
    return body


def test_every_event_and_callout_gets_its_receipt(services: Services, gateway: GatewayEnv) -> None:
    scheme = load_scheme(SCHEME)
    layout = TopicLayout(gateway.topic_root, gateway.zigbee_root)
    pendant = next(d for d in scheme.devices if d.type == "pendant" and not d.zigbee_friendly_name)
    hub = next(d for d in scheme.devices if d.type == "hub")
    resident = scheme.residents[0]
    gateway.process.start()
    rec = Recorder(
        services.mqtt_host,
        services.mqtt_port,
        [f"{gateway.topic_root}/+/devices/+/receipts", f"{gateway.topic_root}/+/careline/receipts"],
    )
    try:
        ev_topic = layout.device_events(scheme.id, pendant.device_id)
        good = _event(pendant.device_id)
        beat = _event(hub.device_id, kind="heartbeat")
        bad = _event(pendant.device_id, battery_pct="lots")
        stranger = _event("no-such-device")
        callout = {
            "callout_id": f"ARC-{uuid.uuid4().hex[:10]}",
            "resident_ref": resident.client_ref,
            "reason": "fell in the bathroom",
            "priority": "P1",
            "operator": "op-1",
            "requested_at": datetime.now(UTC).isoformat(),
        }
        rec.publish(ev_topic, good)
        rec.publish(ev_topic, good)  # a resend: same event_id
        rec.publish(layout.device_events(scheme.id, hub.device_id), beat)
        rec.publish(ev_topic, bad)
        rec.client.publish(ev_topic, b'{"event_id": "ev-cut-1", "ki', qos=1).wait_for_publish(10)
        rec.publish(layout.device_events(scheme.id, "no-such-device"), stranger)
        rec.publish(layout.callouts(scheme.id), callout)

        def receipts_for(topic: str, id_value: str | None, n: int) -> list[dict[str, Any]]:
            def pred(m: Received) -> bool:
                got = m.body.get("callout_id", m.body.get("event_id"))
                return m.topic == topic and got == id_value

            rec.wait(lambda m: len(rec.matching(pred)) >= n, 30, f"{n} receipts on {topic}")
            return [m.body for m in rec.matching(pred)]

        pendant_receipts = layout.device_receipts(scheme.id, pendant.device_id)
        first, second = receipts_for(pendant_receipts, good["event_id"], 2)
        assert (first["status"], second["status"]) == ("accepted", "duplicate")
        assert first["heartbeat_s"] == pendant.expected_heartbeat_s
        assert first["reason"] is None and first["v"] == 1
        for body in (first, second):
            DeviceReceipt.model_validate(body)  # the documented shape, nothing more
            assert datetime.fromisoformat(body["at"]).utcoffset() is not None

        (hub_r,) = receipts_for(
            layout.device_receipts(scheme.id, hub.device_id), beat["event_id"], 1
        )
        assert hub_r["status"] == "accepted" and hub_r["heartbeat_s"] == hub.expected_heartbeat_s

        (refused,) = receipts_for(pendant_receipts, bad["event_id"], 1)
        assert refused["status"] == "refused" and refused["reason"] == "invalid_payload"

        # Cut short: not JSON, yet the id is still read from the bytes so the device can stop.
        (broken,) = receipts_for(pendant_receipts, "ev-cut-1", 1)
        assert broken["status"] == "refused"
        assert broken["reason"] == "malformed_json"

        (unknown,) = receipts_for(
            layout.device_receipts(scheme.id, "no-such-device"), stranger["event_id"], 1
        )
        assert unknown["status"] == "refused" and unknown["reason"] == "unknown_device"
        assert unknown["heartbeat_s"] is None

        (co,) = receipts_for(layout.careline_receipts(scheme.id), callout["callout_id"], 1)
        CalloutReceipt.model_validate(co)
        assert co["status"] == "accepted" and "event_id" not in co

        m = gateway.process.metric
        # Counted when the broker's PUBACK is back, which may be after the subscriber has them.
        wait_for(lambda: m("telecare_receipts_total", result="ok") >= 7, 30, what="7 receipts ok")
        # The gateway hears its own receipts through devices/# and must not dead-letter them.
        assert m("telecare_dead_letters_total", reason="wrong_topic") == 0
        assert json.loads(json.dumps(first)) == first
    finally:
        rec.close()
