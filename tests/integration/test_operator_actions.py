"""The control room's actions against a real gateway (Mosquitto, journal, TimescaleDB):
reassign reaches the handsets, resolve clears the board, each is audited with the operator,
a retry is applied once, a stale action gets a 409 with the reason, and a silenced alarm's
repeat alerts stop while its escalation goes on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api_models import Role
from devices.events import DeviceEvent, EventKind
from devices.registry import DeviceType
from devices.topics import TopicLayout
from tests.conftest import GatewayEnv, Services, wait_for
from tests.engine_helpers import HZC, device_in
from tests.integration.night import Night, rows
from tests.mqtt_helpers import Recorder

pytestmark = pytest.mark.integration


def pressed(night: Night, gateway: GatewayEnv) -> tuple[httpx.Client, str]:
    gateway.process.start()
    night.on_shift({"cw-01": "A-012", "cw-02": "B-050"})
    night.press(device_in("A-013"))
    offer = night.wait_dispatch("cw-01", "offer")
    return gateway.process.api(Role.CONTROL_ROOM), str(offer["alarm_id"])


def board(api: httpx.Client) -> dict[str, dict[str, Any]]:
    return {a["alarm_id"]: a for a in api.get("/api/v1/alarms").json()}


def audit(gateway: GatewayEnv, action: str) -> list[dict[str, Any]]:
    r = gateway.process.api(Role.MANAGER).get("/api/v1/audit", params={"action": action})
    assert r.status_code == 200, r.text
    entries: list[dict[str, Any]] = r.json()
    return entries


def test_reassign_reaches_the_handsets_once_and_is_audited(
    night: Night, gateway: GatewayEnv
) -> None:
    api, alarm_id = pressed(night, gateway)
    rid = str(uuid.uuid4())
    r = api.post(f"/api/v1/alarms/{alarm_id}/assign", json={"carers": ["cw-02"], "request_id": rid})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted"
    offer = night.wait_dispatch("cw-02", "offer", alarm_id=alarm_id)
    cancel = night.wait_dispatch("cw-01", "cancel", alarm_id=alarm_id)
    assert "reassigned by the control room (dev-control)" in str(cancel["reason"])
    # The retry of a lost answer: the alarm is already with cw-02, nothing is sent again.
    again = api.post(
        f"/api/v1/alarms/{alarm_id}/assign", json={"carers": ["cw-02"], "request_id": rid}
    )
    assert again.status_code == 202 and again.json()["status"] in ("already", "duplicate")
    # cw-02 phones in: the operator accepts for them; the handset hears the result.
    r = api.post(f"/api/v1/alarms/{alarm_id}/accept", json={"carer_id": "cw-02"})
    assert r.status_code == 202, r.text
    result = night.wait_dispatch("cw-02", "action_result", alarm_id=alarm_id, action="accept")
    assert result["ok"] is True
    assert wait_for(lambda: board(api)[alarm_id]["accepted_by"] == ["cw-02"], 20, what="accepted")
    assert len(night.offers_to("cw-02")) == 1 and offer["role"] == "primary"
    entries = wait_for(lambda: audit(gateway, "alarm.assign"), 30, what="audit entries")
    assert {e["username"] for e in entries} == {"dev-control"}
    assert all(e["target"] == alarm_id for e in entries)


def test_resolve_clears_the_board_and_a_stale_action_is_refused_with_the_reason(
    night: Night, gateway: GatewayEnv
) -> None:
    api, alarm_id = pressed(night, gateway)
    r = api.post(
        f"/api/v1/alarms/{alarm_id}/resolve",
        json={"outcome": "false_alarm", "note": "resident says pressed by mistake"},
    )
    assert r.status_code == 202, r.text
    wait_for(lambda: alarm_id not in board(api), 20, what="alarm off the board")
    night.wait_dispatch("cw-01", "cancel", alarm_id=alarm_id)  # the carer is stood down
    again = api.post(f"/api/v1/alarms/{alarm_id}/resolve", json={"outcome": "false_alarm"})
    assert again.status_code == 202 and again.json()["status"] == "already"
    late = api.post(f"/api/v1/alarms/{alarm_id}/assign", json={"carers": ["cw-02"]})
    assert late.status_code == 409
    assert late.json()["detail"] == "alarm already resolved"
    steps = wait_for(
        # Wait for the resolved step itself: the rows before it are shipped first.
        lambda: [
            r
            for r in rows(
                gateway.dsn,
                "SELECT step, detail FROM alarm_events WHERE alarm_id = %s"
                " ORDER BY at, journal_seq",
                alarm_id,
            )[-1:]
            if r[0] == "resolved"
        ],
        30,
        what="resolved in the database",
    )
    assert steps[0][0] == "resolved" and steps[0][1]["by"] == "dev-control"  # type: ignore[index]
    entries = wait_for(lambda: audit(gateway, "alarm.resolve"), 30, what="audit")
    answers = sorted(e["detail"]["answer"] for e in entries)
    assert answers == ["accepted", "already"]
    refused = wait_for(lambda: audit(gateway, "alarm.assign"), 30, what="refusal audited")
    assert refused[0]["detail"]["answer"] == "refused"


def test_bad_requests_get_clear_answers(night: Night, gateway: GatewayEnv) -> None:
    api, alarm_id = pressed(night, gateway)
    unknown = api.post(f"/api/v1/alarms/{uuid.uuid4()}/escalate")
    assert unknown.status_code == 404
    other = api.post(f"/api/v1/alarms/{alarm_id}/resolve", json={"outcome": "other"})
    assert other.status_code == 422 and "needs a note" in other.json()["detail"]
    nobody = api.post(f"/api/v1/alarms/{alarm_id}/assign", json={"carers": ["cw-99"]})
    assert nobody.status_code == 409 and "no carer 'cw-99'" in nobody.json()["detail"]
    no_offer = api.post(f"/api/v1/alarms/{alarm_id}/arrived", json={"carer_id": "cw-02"})
    assert no_offer.status_code == 409 and "has not accepted" in no_offer.json()["detail"]
    carer = gateway.process.api(Role.CARER)
    assert carer.post(f"/api/v1/alarms/{alarm_id}/escalate").status_code == 403


def test_silenced_escalation_stops_repeating_while_offers_go_on(
    night: Night, gateway: GatewayEnv
) -> None:
    api, alarm_id = pressed(night, gateway)
    assert api.post(f"/api/v1/alarms/{alarm_id}/escalate").status_code == 202
    night.wait_dispatch("cw-02", "offer", alarm_id=alarm_id)

    def alerts() -> list[dict[str, Any]]:
        return [
            m.body
            for m in night.rec.matching(
                lambda m: m.topic.endswith("/control/alerts") and m.body.get("alarm_id") == alarm_id
            )
        ]

    def escalations() -> int:
        return len(
            rows(
                gateway.dsn,
                "SELECT 1 FROM alarm_events WHERE alarm_id = %s AND step = 'escalated'",
                alarm_id,
            )
        )

    # Unsilenced, the escalation repeats every 2 minutes of scheme time, with alerts each time.
    wait_for(lambda: escalations() >= 2, 60, what="a repeat escalation")
    wait_for(lambda: len([a for a in alerts() if a.get("code") == "escalated"]) >= 2, 20)
    r = api.post(f"/api/v1/alarms/{alarm_id}/silence", json={"minutes": 30})
    assert r.status_code == 202, r.text
    wait_for(lambda: board(api)[alarm_id]["silenced_until"], 20, what="silence applied")
    heard = len(alerts())
    seen = escalations()
    # Two more repeats happen (offers still go to everyone on shift), with no alert.
    wait_for(lambda: escalations() >= seen + 2, 90, what="repeats while silenced")
    assert len(alerts()) == heard
    assert board(api)[alarm_id]["state"] == "escalated"


def test_device_health_queue_and_clearing_a_fault(services: Services, gateway: GatewayEnv) -> None:
    # On the real clock: every device was heard at start-up, none is due a heartbeat yet.
    gateway.process.start()
    api = gateway.process.api(Role.CONTROL_ROOM)
    layout = TopicLayout(gateway.topic_root, gateway.zigbee_root)
    rec = Recorder(services.mqtt_host, services.mqtt_port, [f"{gateway.topic_root}/#"])
    pendant, hub = device_in("A-013"), device_in("A-014", DeviceType.HUB)
    ev = DeviceEvent(
        event_id=uuid.uuid4(),
        device_id=pendant,
        kind=EventKind.LOW_BATTERY,
        occurred_at=datetime.now(UTC),
    )
    rec.publish(layout.device_events(HZC.id, pendant), ev.model_dump(mode="json"))
    rec.close()
    window = api.post(f"/api/v1/devices/{HZC.id}/{hub}/maintenance", json={"minutes": 30})
    assert window.status_code == 202

    def health() -> dict[str, dict[str, Any]]:
        r = api.get("/api/v1/devices/health", params={"scheme": HZC.id})
        assert r.status_code == 200, r.text
        return {d["device_id"]: d for d in r.json()["devices"]}

    got = wait_for(lambda: (h := health()) and pendant in h and hub in h and h, 20, what="queue")
    assert list(got) == [pendant, hub]  # a fault before a test window
    [battery] = got[pendant]["problems"]
    assert battery["kind"] == "low_battery" and battery["since"] is not None
    assert [p["kind"] for p in got[hub]["problems"]] == ["test_window"]
    path = f"/api/v1/devices/{HZC.id}/{pendant}/faults"
    assert api.post(f"{path}/tamper/clear").status_code == 409  # not open
    assert api.post(f"{path}/offline/clear").status_code == 409  # clears itself
    assert api.post(f"{path}/low_battery/clear").status_code == 202
    wait_for(lambda: pendant not in health(), 20, what="fault cleared")
    entries = wait_for(lambda: audit(gateway, "device.clear_fault"), 30, what="audit")
    assert entries[0]["username"] == "dev-control"


def test_kpi_strip_counts_tonights_alarm_and_its_times(night: Night, gateway: GatewayEnv) -> None:
    api, alarm_id = pressed(night, gateway)
    assert (
        api.post(f"/api/v1/alarms/{alarm_id}/accept", json={"carer_id": "cw-01"}).status_code == 202
    )
    wait_for(lambda: board(api)[alarm_id]["state"] == "accepted", 20, what="accepted")
    assert (
        api.post(f"/api/v1/alarms/{alarm_id}/arrived", json={"carer_id": "cw-01"}).status_code
        == 202
    )

    def strip() -> dict[str, Any]:
        r = api.get("/api/v1/kpi", params={"scheme": HZC.id})
        assert r.status_code == 200, r.text
        [one] = r.json()
        return one  # type: ignore[no-any-return]

    k = wait_for(lambda: (s := strip())["tonight"]["arrived"] == 1 and s, 30, what="kpi")
    t = k["tonight"]
    assert (t["alarms"], t["accepted"], t["arrived"]) == (1, 1, 1)
    assert 0 <= t["accept_median_s"] <= t["arrive_median_s"]
    assert t["within_target_pct"] == 100.0  # on site within the scheme's P1 target of 300 s
    assert sum(k["hourly"]) == 1 and len(k["hourly"]) == 12
    assert api.get("/api/v1/kpi", params={"scheme": "nowhere"}).status_code == 404
