"""Test windows against the running gateway: a press from a device in a test window reaches
the control room as a test call (board, alert stream, MQTT control topic) and pages nobody;
one operator action makes it a real alarm with an offer; a fire in a test window is real."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from devices.events import DeviceEvent, EventKind
from devices.registry import DeviceType
from tests.conftest import GatewayEnv
from tests.engine_helpers import HZC, device_in
from tests.integration.night import Night

pytestmark = pytest.mark.integration


class AlertStream:
    """The control room's live alert stream (``/api/v1/alerts/stream``), read in a thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.alerts: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._open = threading.Event()
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=60))
        threading.Thread(target=self._read, daemon=True).start()
        assert self._open.wait(20), "alert stream did not open"

    def _read(self) -> None:
        try:
            with self._client.stream("GET", f"{self.url}/api/v1/alerts/stream") as r:
                self._open.set()
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        body = json.loads(line.removeprefix("data: "))
                        with self._cond:
                            self.alerts.append(body)
                            self._cond.notify_all()
        except httpx.HTTPError:
            if not self._stop.is_set():
                raise

    def wait(self, timeout: float, **match: object) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for a in self.alerts:
                    if all(a.get(k) == v for k, v in match.items()):
                        return a
                left = deadline - time.monotonic()
                assert left > 0, f"no alert {match}; saw {[a.get('code') for a in self.alerts]}"
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        self._client.close()


def fire(night: Night, device: str) -> str:
    ev = DeviceEvent(
        event_id=uuid.uuid4(), device_id=device, kind=EventKind.SMOKE, occurred_at=night.now()
    )
    night.rec.publish(night.layout.device_events(HZC.id, device), ev.model_dump(mode="json"))
    return str(ev.event_id)


def test_a_press_in_a_test_window_is_a_test_call_promotion_makes_it_real_and_fire_is_real(
    night: Night, gateway: GatewayEnv
) -> None:
    gateway.process.start()
    url = gateway.process.url
    stream = AlertStream(url)
    try:
        night.on_shift({"cw-01": "A-012", "cw-02": "B-050"})
        pendant = device_in("A-013")
        smoke = device_in("A-013", DeviceType.SMOKE)
        for dev in (pendant, smoke):
            r = httpx.post(f"{url}/api/v1/devices/{HZC.id}/{dev}/maintenance", json={"minutes": 60})
            assert r.status_code == 202, r.text
            stream.wait(20, code="test_window_started")
        night.press(pendant)
        alert = stream.wait(20, code="test_call")
        alarm_id = str(alert["alarm_id"])
        assert pendant in str(alert["message"])
        # The same alert went to the control room's MQTT topic, and nobody was paged.
        night.rec.wait(lambda m: m.body.get("code") == "test_call", 20, "test_call on MQTT")
        board = httpx.get(f"{url}/api/v1/alarms").json()
        [call] = [a for a in board if a["alarm_id"] == alarm_id]
        assert call["state"] == "test_call" and call["offers"] == []
        assert night.offers_to("cw-01") == [] and night.offers_to("cw-02") == []
        # Promoting anything but a test call is refused with a reason.
        assert httpx.post(f"{url}/api/v1/alarms/{uuid.uuid4()}/promote").status_code == 404
        # One operator action: it becomes a real alarm, offered to the nearest carer.
        r = httpx.post(f"{url}/api/v1/alarms/{alarm_id}/promote")
        assert r.status_code == 202, r.text
        offer = night.wait_dispatch("cw-01", "offer", alarm_id=alarm_id)
        assert offer["flat_id"] == "A-013" and offer["priority"] == "P1"
        again = httpx.post(f"{url}/api/v1/alarms/{alarm_id}/promote")
        assert again.status_code == 409 and "not a test call" in again.text
        # A fire from a device in a test window is real: everyone on shift, at once.
        fire(night, smoke)
        fire_alert = stream.wait(20, code="fire")
        night.wait_dispatch("cw-02", "offer", alarm_id=fire_alert["alarm_id"], role="all")
        assert [a.get("code") for a in stream.alerts].count("test_call") == 1
        # The test call and its promotion are on record (engine log -> alarm_events).
        assert {"test_call", "promoted", "raised", "offered"} <= _steps(gateway, alarm_id)
    finally:
        stream.close()


def _steps(gateway: GatewayEnv, alarm_id: str) -> set[str]:
    """The alarm's steps in the gateway's durable engine log (committed before any message
    about them is sent; the shipper copies the same rows to ``alarm_events``)."""
    path = gateway.process.env["TELECARE_JOURNAL__PATH"]
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT body FROM engine_log WHERE stream = 'alarm_events'").fetchall()
    bodies = [json.loads(b) for (b,) in rows]
    return {b["step"] for b in bodies if b["alarm_id"] == alarm_id}
