"""Planned visits through a real gateway: a handset checks in over MQTT, the engine answers on
its dispatch topic, and the step is a ``visit_events`` row in TimescaleDB. The night's plan
survives a restart (the check-out after it is accepted), and a check-in to a visit the gateway
does not know is dead-lettered with its reason."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from api_models import Role
from devices.scheme import load_scheme
from devices.topics import TopicLayout
from devices.visits import load_schedule, schedule_beside
from tests.conftest import REPO, GatewayEnv, Services, wait_for
from tests.integration.night import rows
from tests.mqtt_helpers import Recorder

pytestmark = pytest.mark.integration

THURROCK = REPO / "examples" / "thurrock-ooh.yaml"  # its .visits.yaml beside it is loaded too
SCHEME = "thurrock-ooh"
START = datetime(2026, 11, 24, 23, 10, tzinfo=UTC)  # Tuesday night, GMT: local = UTC
SPEED = 10.0
PLANNED = len(load_schedule(schedule_beside(THURROCK), load_scheme(THURROCK)).visits())


def _rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    """Rows, or none while the shipper has not yet created the table."""
    try:
        return rows(dsn, sql)
    except psycopg.errors.UndefinedTable:
        return []


def _visit(action: str, visit_id: str, at: datetime, **kw: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "visit_action_id": str(uuid.uuid4()),
        "action": action,
        "visit_id": visit_id,
        "at": at.isoformat(),
        **kw,
    }


def test_check_in_over_mqtt_is_answered_and_recorded(
    services: Services, gateway: GatewayEnv
) -> None:
    anchor = time.time()
    gateway.process.env.update(
        {
            "TELECARE_SCHEMES": f'["{THURROCK}"]',
            "TELECARE_CLOCK__SPEED": str(SPEED),
            "TELECARE_CLOCK__START": START.isoformat(),
            "TELECARE_CLOCK__ANCHOR": str(anchor),
            "TELECARE_ENGINE__TICK_S": "5",
        }
    )

    def now() -> datetime:
        return START + (datetime.now(UTC) - datetime.fromtimestamp(anchor, UTC)) * SPEED

    layout = TopicLayout(gateway.topic_root, gateway.zigbee_root)
    rec = Recorder(
        services.mqtt_host,
        services.mqtt_port,
        [f"{gateway.topic_root}/{SCHEME}/carers/+/dispatch"],
    )
    dsn = gateway.dsn
    try:
        gateway.process.start()
        topic = layout.carer(SCHEME, "ooh-01", "visits")
        checkin = _visit("check_in", "r1-01", now())
        rec.publish(topic, checkin)
        ok = rec.wait_dispatch(
            "ooh-01", "visit_result", 30, visit_action_id=checkin["visit_action_id"]
        )
        assert ok["ok"] is True and ok["visit_id"] == "r1-01" and ok["reason"] is None
        # A carer of another run is refused, with the reason, on their own dispatch topic.
        wrong = _visit("check_in", "r1-02", now())
        rec.publish(layout.carer(SCHEME, "ooh-03", "visits"), wrong)
        no = rec.wait_dispatch(
            "ooh-03", "visit_result", 30, visit_action_id=wrong["visit_action_id"]
        )
        assert no["ok"] is False and no["reason"] == "not_on_run"
        # A visit nobody planned is dead-lettered, not applied.
        rec.publish(topic, _visit("check_in", "no-such-visit", now()))
        checked_in = wait_for(
            lambda: _rows(
                dsn,
                "SELECT carer_id, run, client_ref, night, detail FROM visit_events"
                " WHERE visit_id = 'r1-01' AND step = 'checked_in'",
            ),
            60,
            what="the checked_in row in TimescaleDB",
        )
        carer, run, client, night, detail = checked_in[0]
        assert (carer, run, client, str(night)) == ("ooh-01", "run-1", "THR-4100", "2026-11-24")
        assert isinstance(detail, dict) and detail["punctuality"] == "on_time"
        planned = rows(dsn, "SELECT count(*) FROM visit_events WHERE step = 'planned'")
        assert planned[0][0] == PLANNED
        wait_for(
            lambda: rows(dsn, "SELECT 1 FROM dead_letters WHERE reason = 'unknown_visit'"),
            60,
            what="the unknown visit dead-lettered",
        )
        # The plan survives a restart: the check-out finds the visit checked in.
        gateway.process.stop()
        gateway.process.start()
        checkout = _visit("check_out", "r1-01", now())
        rec.publish(topic, checkout)
        out = rec.wait_dispatch(
            "ooh-01", "visit_result", 30, visit_action_id=checkout["visit_action_id"]
        )
        assert out["ok"] is True, out
        wait_for(
            lambda: _rows(
                dsn,
                "SELECT 1 FROM visit_events WHERE visit_id = 'r1-01' AND step = 'checked_out'",
            ),
            60,
            what="the checked_out row",
        )
        # Built once a night, not again at the restart.
        planned = rows(dsn, "SELECT count(*) FROM visit_events WHERE step = 'planned'")
        assert planned[0][0] == PLANNED
        # The control room sees tonight's visits with their status.
        got = gateway.process.api(Role.CONTROL_ROOM).get(f"/api/v1/visits/{SCHEME}")
        assert got.status_code == 200, got.text
        by_id = {v["visit_id"]: v for v in got.json()["visits"]}
        assert by_id["r1-01"]["status"] == "checked_out"
        assert by_id["r1-02"]["status"] == "planned"
    finally:
        rec.close()


def test_the_control_room_changes_a_night_and_the_carer_page_checks_in(
    gateway: GatewayEnv,
) -> None:
    anchor = time.time()
    gateway.process.env.update(
        {
            "TELECARE_SCHEMES": f'["{THURROCK}"]',
            "TELECARE_CLOCK__SPEED": "1",
            "TELECARE_CLOCK__START": START.isoformat(),
            "TELECARE_CLOCK__ANCHOR": str(anchor),
        }
    )
    gateway.process.start()
    ops = gateway.process.api(Role.CONTROL_ROOM)
    ops_user = gateway.process.account(Role.CONTROL_ROOM).username
    base = f"/api/v1/visits/{SCHEME}"
    # Cancel for the person (before the agreed time): 202, then the night shows it cancelled;
    # cancelling again no longer applies (409), and an unknown visit is 404.
    r = ops.post(f"{base}/r2-01/cancel", json={"by": "person", "reason": "away at family"})
    assert r.status_code == 202, r.text
    assert r.json()["night"] == "2026-11-24"

    def status(visit_id: str) -> str:
        got = ops.get(base).json()["visits"]
        return str(next(v["status"] for v in got if v["visit_id"] == visit_id))

    wait_for(lambda: status("r2-01") == "cancelled", 30, what="the cancellation applied")
    again = ops.post(f"{base}/r2-01/cancel", json={"by": "person"})
    assert again.status_code == 202 and again.json()["status"] == "already"
    late = ops.post(f"{base}/r2-01/move", json={"agreed_at": "2026-11-25T01:15:00+00:00"})
    assert late.status_code == 409 and "cancelled" in late.json()["detail"]
    assert ops.post(f"{base}/nope/cancel", json={"by": "council"}).status_code == 404
    # Move, and an extra visit the decoders then know.
    moved = ops.post(f"{base}/r3-02/move", json={"agreed_at": "2026-11-25T01:15:00+00:00"})
    assert moved.status_code == 202, moved.text
    extra = {
        "visit_id": "x-01", "run": "run-1", "client": "THR-4142",
        "agreed_at": "2026-11-24T23:50:00+00:00", "minutes": 20,
        "service": "Home care", "level": "Night - single", "request_id": str(uuid.uuid4()),
    }  # fmt: skip
    assert ops.post(f"{base}/extra", json=extra).status_code == 202
    assert ops.post(f"{base}/extra", json=extra).json()["status"] in ("duplicate", "already")
    wait_for(lambda: status("x-01") == "planned", 30, what="the extra visit")
    bad = ops.post(f"{base}/extra", json={**extra, "request_id": None, "run": "run-9"})
    assert bad.status_code == 409
    # The audit trail names who changed what.
    admin = gateway.process.api(Role.ADMIN)

    def cancels() -> list[dict[str, Any]]:
        got = admin.get("/api/v1/audit", params={"action": "visit.cancel"})
        return list(got.json()) if got.status_code == 200 else []

    entries = wait_for(lambda: cancels(), 30, what="the cancellation in the audit trail")
    assert {e["target"] for e in entries} >= {f"{SCHEME}/r2-01", f"{SCHEME}/nope"}
    assert all(e["username"] == ops_user for e in entries)
    # The carer page: ooh-01's run, a check-in to the extra visit, and its status after.
    account = gateway.process.account(Role.CARER, carer=(SCHEME, "ooh-01"))
    with httpx.Client(base_url=gateway.process.url, timeout=10) as page:
        login = {"scheme": SCHEME, "carer_id": "ooh-01", "token": account.password}
        assert page.post("/carer/api/login", json=login).status_code == 200
        run = page.get("/carer/api/run").json()
        assert run["run"] == "run-1"
        ids = [v["visit_id"] for v in run["visits"]]
        assert ids[:2] == ["r1-01", "x-01"] and "r2-01" not in ids
        unknown = {"action": "check_in", "visit_id": "zz"}
        assert page.post("/carer/api/visits", json=unknown).status_code == 404
        went = page.post("/carer/api/visits", json={"action": "check_in", "visit_id": "x-01"})
        assert went.status_code == 202, went.text

        def page_status() -> str:
            got = page.get("/carer/api/run").json()["visits"]
            return str(next(v["status"] for v in got if v["visit_id"] == "x-01"))

        wait_for(lambda: page_status() == "checked_in", 30, what="the page's check-in")
