"""Control-room API against a running gateway: authorisation, validation, overrides."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from api_models import Role
from tests.conftest import REPO, GatewayEnv, wait_for

pytestmark = pytest.mark.integration


def test_control_changes_need_a_session_and_bad_requests_get_a_message(
    gateway: GatewayEnv,
) -> None:
    gateway.process.start()
    base = gateway.process.url
    url = f"{base}/api/v1/carers/hazelhurst-court/cw-01/status"
    anon = httpx.post(url, json={"status": "on_break"})
    assert anon.status_code == 401 and "sign in" in anon.json()["detail"]
    api = gateway.process.api(Role.CONTROL_ROOM)
    bad = api.post(url, json={"status": "asleep"})
    assert bad.status_code == 422 and "status" in bad.text
    missing = api.post(
        f"{base}/api/v1/carers/hazelhurst-court/nobody/status", json={"status": "on_break"}
    )
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
    assert api.post(url, json={"status": "on_break"}).status_code == 202

    def cw01() -> dict[str, object] | None:
        rows = api.get("/api/v1/carers").json()
        c = next(r for r in rows if r["carer_id"] == "cw-01")
        return c if c["status"] == "on_break" else None

    c = wait_for(cw01, 10, what="cw-01 on break")
    assert c["display_name"] and c["routable"] is False
    assert api.get("/api/v1/alarms/not-a-uuid").status_code in (404, 422)
    assert api.get("/api/v1/events", params={"limit": 0}).status_code == 422
    dev = api.post(
        "/api/v1/devices/hazelhurst-court/hzc-a-001-pendant/maintenance", json={"minutes": 30}
    )
    assert dev.status_code == 202 and dev.json()["until"]


def test_telecare_events_signs_in_with_the_development_account(gateway: GatewayEnv) -> None:
    gateway.process.start()
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "events", "--limit", "5"],
        env=gateway.process.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "journal head" in done.stdout
