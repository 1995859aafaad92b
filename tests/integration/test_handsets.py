"""The handset protocol against the running gateway: who gets paged, idempotent actions,
stale offers, and a handset that goes silent."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import httpx
import pytest

from api_models import Role
from tests.conftest import GatewayEnv
from tests.engine_helpers import device_in
from tests.integration.night import Night

pytestmark = pytest.mark.integration


def test_press_reaches_only_the_nearest_carer_and_stale_accept_is_rejected(
    night: Night, gateway: GatewayEnv
) -> None:
    gateway.process.start()
    night.on_shift({"cw-01": "A-012", "cw-02": "B-050"})
    night.press(device_in("A-013"))
    offer = night.wait_dispatch("cw-01", "offer")
    alarm_id = str(offer["alarm_id"])
    time.sleep(1.0)  # 10 s of scheme time: well inside the 60 s offer timeout
    assert night.offers_to("cw-02") == [], "only the nearest carer is paged"
    night.act("cw-01", "decline", alarm_id, str(offer["offer_id"]))
    moved = night.wait_dispatch("cw-02", "offer", alarm_id=alarm_id)
    # cw-01 changes their mind: the offer has moved to cw-02, so the accept is refused.
    night.act("cw-01", "accept", alarm_id, str(offer["offer_id"]))
    refused = night.wait_dispatch("cw-01", "action_result", alarm_id=alarm_id, action="accept")
    assert refused["ok"] is False and "no longer live" in str(refused["reason"])
    night.act("cw-02", "accept", alarm_id, str(moved["offer_id"]))
    night.act("cw-02", "accept", alarm_id, str(moved["offer_id"]))
    night.rec.wait(
        lambda m: (
            m.topic.endswith("/carers/cw-02/dispatch")
            and m.body.get("reason") == "already accepted"
        ),
        20,
        "duplicate accept answered as harmless",
    )
    alarms = gateway.process.api(Role.CONTROL_ROOM).get("/api/v1/alarms").json()
    [a] = [x for x in alarms if x["alarm_id"] == alarm_id]
    assert a["state"] == "accepted" and a["accepted_by"] == ["cw-02"]
    assert len(night.offers_to("cw-01")) == 1 and len(night.offers_to("cw-02")) == 1


def test_silent_handset_drops_out_of_routing_and_control_room_is_told(
    night: Night, gateway: GatewayEnv
) -> None:
    gateway.process.start()
    sse: list[str] = []

    def read_alert_stream() -> None:
        url = f"{gateway.process.url}/api/v1/alerts/stream"
        api = gateway.process.api(Role.CONTROL_ROOM)
        with api.stream("GET", url, timeout=httpx.Timeout(5, read=60)) as r:
            for line in r.iter_lines():
                sse.append(line)
                if "handset_silent" in line:
                    return

    reader = threading.Thread(target=read_alert_stream, daemon=True)
    reader.start()
    logged_in_at = night.now()
    night.login("cw-01", "A-012")  # nearest to A-013, but its handset will fall silent
    night.login("cw-02", "B-050")
    night.start_heartbeats(["cw-02"])
    alert = night.rec.wait(
        lambda m: m.body.get("code") == "handset_silent" and "cw-01" in str(m.body.get("message")),
        timeout=40,
        what="handset_silent alert for cw-01",
    )
    # Handset timeout is 120 scheme-s and ticks every 5 (judged from the alert's scheme stamp).
    told = (datetime.fromisoformat(str(alert.body["at"])) - logged_in_at).total_seconds()
    assert 120 <= told <= 120 + 5 + 25, f"told after {told:.0f}s of scheme time"
    carers = gateway.process.api(Role.CONTROL_ROOM).get("/api/v1/carers").json()
    cw01 = next(c for c in carers if c["carer_id"] == "cw-01")
    assert cw01["routable"] is False and cw01["reason"] == "handset silent"
    night.press(device_in("A-013"))
    offer = night.wait_dispatch("cw-02", "offer")
    assert offer["flat_id"] == "A-013"
    assert night.offers_to("cw-01") == []
    reader.join(timeout=10)
    assert any("handset_silent" in line for line in sse), "control-room stream carries the alert"
