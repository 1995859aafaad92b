"""The gateway's own lag is not a silent device: the gateway process is frozen (SIGSTOP, as a
starved CPU would) while every hub keeps sending heartbeats, then thawed.

Before the ingest horizon, the first supervision tick after the thaw judged every hub against
the wall clock and raised a "no contact" for each, although their heartbeats were waiting in
the gateway's own socket. Now: no hub is blamed, and the control room gets one
``gateway_behind`` alert, then ``gateway_caught_up``. Real gateway, shared Mosquitto, scheme
clock at 10x (a hub's limit of 180 s is 18 s of real time; the freeze is 25 s)."""

from __future__ import annotations

import os
import signal
import threading
import uuid

import pytest

from devices.events import DeviceEvent, EventKind
from devices.registry import DeviceType
from tests.conftest import GatewayEnv
from tests.engine_helpers import HZC
from tests.integration.night import Night

pytestmark = pytest.mark.integration

FREEZE_S = 25.0  # real seconds: 250 s of scheme time, past every hub's 180 s limit
HUBS = sorted(d.device_id for d in HZC.devices if d.type is DeviceType.HUB)


def test_a_frozen_gateway_blames_no_hub_and_says_it_was_behind(
    night: Night, gateway: GatewayEnv
) -> None:
    gateway.process.env["TELECARE_ENGINE__HANDSET_TIMEOUT_S"] = "120"
    gateway.process.start()
    stop = threading.Event()

    def hubs_beat() -> None:
        while not stop.wait(1.0):  # every 10 s of scheme time, well inside 60 s
            for hub in HUBS:
                ev = DeviceEvent(
                    event_id=uuid.uuid4(),
                    device_id=hub,
                    kind=EventKind.HEARTBEAT,
                    occurred_at=night.now(),
                )
                night.rec.publish(
                    night.layout.device_events(HZC.id, hub), ev.model_dump(mode="json")
                )

    beater = threading.Thread(target=hubs_beat, daemon=True)
    beater.start()
    try:
        night.on_shift({"cw-01": "A-012", "cw-02": "B-050"})
        proc = gateway.process.proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            stop.wait(FREEZE_S)  # the hubs and handsets go on beating into the broker
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        night.rec.wait(
            lambda m: m.body.get("code") == "gateway_caught_up", 60, "gateway_caught_up alert"
        )
        codes = [str(m.body.get("code")) for m in night.rec.messages]
        blamed = [
            m.body.get("device_id")
            for m in night.rec.messages
            if m.body.get("type") == "technical" and m.body.get("code") == "no_contact"
        ]
        assert blamed == [], f"hubs blamed for the gateway's own freeze: {blamed}"
        assert "handset_silent" not in codes
        assert codes.count("gateway_behind") == 1
    finally:
        stop.set()
        beater.join(timeout=10)
