"""The handset protocol against the running gateway: who gets paged, idempotent actions,
stale offers, and a handset that goes silent."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from responders.credentials import CredentialStore
from tests.conftest import GatewayEnv
from tests.engine_helpers import HZC, device_in, resident_with
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
    alarms = httpx.get(f"{gateway.process.url}/api/v1/alarms").json()
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
        with httpx.stream("GET", url, timeout=httpx.Timeout(5, read=60)) as r:
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
    carers = httpx.get(f"{gateway.process.url}/api/v1/carers").json()
    cw01 = next(c for c in carers if c["carer_id"] == "cw-01")
    assert cw01["routable"] is False and cw01["reason"] == "handset silent"
    night.press(device_in("A-013"))
    offer = night.wait_dispatch("cw-02", "offer")
    assert offer["flat_id"] == "A-013"
    assert night.offers_to("cw-01") == []
    reader.join(timeout=10)
    assert any("handset_silent" in line for line in sse), "control-room stream carries the alert"


class PageStream:
    """A carer page's live stream (``/carer/api/stream``), read as the page's EventSource does."""

    def __init__(self, base_url: str, scheme: str, carer: str, token: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=60))
        r = self.client.post(
            "/carer/api/login", json={"scheme": scheme, "carer_id": carer, "token": token}
        )
        r.raise_for_status()
        self.events: list[dict[str, object]] = []
        self._cond = threading.Condition()
        self._hello = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._hello.wait(20), "carer page stream did not open"

    def _read(self) -> None:
        try:
            self._read_stream()
        except httpx.HTTPError:
            if not self._stop.is_set():  # closing the client ends the read; anything else fails
                raise

    def _read_stream(self) -> None:
        with self.client.stream("GET", "/carer/api/stream") as r:
            event = ""
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                    if event == "hello":
                        self._hello.set()
                elif line.startswith("data: ") and event == "dispatch":
                    with self._cond:
                        self.events.append(json.loads(line.removeprefix("data: ")))
                        self._cond.notify_all()

    def wait(self, timeout: float, **match: object) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if all(e.get(k) == v for k, v in match.items()):
                        return e
                left = deadline - time.monotonic()
                assert left > 0, f"no {match} on the carer page stream; saw {self.events[-10:]}"
                self._cond.wait(left)

    def close(self) -> None:
        self._stop.set()
        self.client.close()


def test_when_one_of_a_pair_resolves_the_others_live_offer_is_withdrawn_everywhere(
    night: Night, gateway: GatewayEnv, tmp_path: Path
) -> None:
    creds = tmp_path / "carer-credentials.json"
    store = CredentialStore()
    token = store.issue(HZC.id, ["cw-02"])["cw-02"]
    store.save(creds)
    gateway.process.env.update(
        {
            "TELECARE_CARER_AUTH__FILE": str(creds),
            # The second carer's offer stays live (600 scheme s = 60 s real) while cw-01 works.
            "TELECARE_ENGINE__OFFER_TIMEOUT_S": "600",
        }
    )
    gateway.process.start()
    page = PageStream(gateway.process.url, HZC.id, "cw-02", token)
    try:
        night.on_shift({"cw-01": "A-012", "cw-02": "B-050"})
        resident = resident_with("double_handed")
        night.press(device_in(resident.flat))
        first = night.wait_dispatch("cw-01", "offer")
        alarm_id = str(first["alarm_id"])
        second = night.wait_dispatch("cw-02", "offer", alarm_id=alarm_id)
        assert first["double_handed"] is True
        page.wait(20, type="offer", offer_id=second["offer_id"])
        night.act("cw-01", "accept", alarm_id, str(first["offer_id"]))
        night.wait_dispatch("cw-01", "action_result", alarm_id=alarm_id, action="accept", ok=True)
        night.act("cw-01", "arrived", alarm_id)
        night.wait_dispatch("cw-01", "action_result", alarm_id=alarm_id, action="arrived", ok=True)
        night.act("cw-01", "resolved", alarm_id, outcome="assisted")
        # cw-02 is told on the handset topic and on the page stream, with the reason.
        cancel = night.wait_dispatch("cw-02", "cancel", alarm_id=alarm_id)
        assert cancel["offer_id"] == second["offer_id"]
        assert cancel["reason"] == "resolved by cw-01"
        on_page = page.wait(20, type="cancel", offer_id=second["offer_id"])
        assert on_page["reason"] == "resolved by cw-01"
        # And the page's own catch-up view no longer lists the offer.
        state = page.client.get("/carer/api/state").json()
        assert all(o["alarm_id"] != alarm_id for o in state["offers"])
    finally:
        page.close()
