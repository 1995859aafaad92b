"""Control-room API against a running gateway: authorisation, validation, overrides."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import GatewayEnv, wait_for

pytestmark = pytest.mark.integration

TOKEN = "test-control-token-0123456789"


def test_control_changes_need_the_token_and_bad_requests_get_a_message(
    gateway: GatewayEnv,
) -> None:
    gateway.process.env["TELECARE_HTTP__CONTROL_TOKEN"] = TOKEN
    gateway.process.start()
    base = gateway.process.url
    url = f"{base}/api/v1/carers/hazelhurst-court/cw-01/status"
    assert httpx.post(url, json={"status": "on_break"}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = httpx.post(url, json={"status": "asleep"}, headers=auth)
    assert bad.status_code == 422 and "status" in bad.text
    missing = httpx.post(
        f"{base}/api/v1/carers/hazelhurst-court/nobody/status",
        json={"status": "on_break"},
        headers=auth,
    )
    assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
    assert httpx.post(url, json={"status": "on_break"}, headers=auth).status_code == 202

    def cw01() -> dict[str, object] | None:
        rows = httpx.get(f"{base}/api/v1/carers").json()
        c = next(r for r in rows if r["carer_id"] == "cw-01")
        return c if c["status"] == "on_break" else None

    c = wait_for(cw01, 10, what="cw-01 on break")
    assert c["display_name"] and c["routable"] is False
    assert httpx.get(f"{base}/api/v1/alarms/not-a-uuid").status_code in (404, 422)
    assert httpx.get(f"{base}/api/v1/events", params={"limit": 0}).status_code == 422
    dev = httpx.post(
        f"{base}/api/v1/devices/hazelhurst-court/hzc-a-001-pendant/maintenance",
        json={"minutes": 30},
        headers=auth,
    )
    assert dev.status_code == 202 and dev.json()["until"]
