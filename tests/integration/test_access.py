"""Who may see and do what: a role x route matrix built from the app's own route table (a new
route without a rule here fails), object-level checks, and no personal data without a session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api_models import Role
from devices.scheme import load_scheme
from gateway.api.app import route_table
from gateway.api.security import access_rules
from tests.conftest import SCHEME, GatewayEnv
from tests.engine_helpers import device_in
from tests.integration.night import Night

pytestmark = pytest.mark.integration

C, R, M, CO, A = Role.CARER, Role.CONTROL_ROOM, Role.MANAGER, Role.COMMISSIONER, Role.ADMIN
EVERYONE = frozenset(Role)
OPS = frozenset({R, M})
PUBLIC = "public"
DOCS = "docs"  # public in development and test, any signed-in role in production

# The rules as the product states them (docs/security.md). Keys are the app's own routes.
EXPECTED: dict[tuple[str, str], frozenset[Role] | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): DOCS,
    ("GET", "/docs"): DOCS,
    ("GET", "/redoc"): DOCS,
    ("POST", "/api/v1/session"): PUBLIC,
    ("GET", "/api/v1/session"): EVERYONE,
    ("DELETE", "/api/v1/session"): EVERYONE,
    ("GET", "/api/v1/clock"): EVERYONE,
    ("GET", "/api/v1/ingest"): frozenset({R, M, A}),
    ("GET", "/api/v1/events"): OPS,
    ("GET", "/api/v1/dead-letters"): OPS,
    ("GET", "/api/v1/alarms"): OPS,
    ("GET", "/api/v1/alarms/{alarm_id}"): frozenset({R, M, C}),  # carers: their own only
    ("POST", "/api/v1/alarms/{alarm_id}/promote"): OPS,
    ("POST", "/api/v1/alarms/{alarm_id}/assign"): OPS,
    ("POST", "/api/v1/alarms/{alarm_id}/escalate"): OPS,
    ("POST", "/api/v1/alarms/{alarm_id}/accept"): OPS,
    ("POST", "/api/v1/alarms/{alarm_id}/arrived"): OPS,
    ("POST", "/api/v1/alarms/{alarm_id}/resolve"): OPS,
    ("POST", "/api/v1/alarms/{alarm_id}/notes"): OPS,
    ("POST", "/api/v1/alarms/{alarm_id}/acknowledge"): OPS,
    ("POST", "/api/v1/alarms/{alarm_id}/silence"): OPS,
    ("GET", "/api/v1/carers"): OPS,
    ("POST", "/api/v1/carers/{scheme}/{carer_id}/status"): OPS,
    ("POST", "/api/v1/devices/{scheme}/{device_id}/maintenance"): OPS,
    ("GET", "/api/v1/devices/health"): OPS,
    ("POST", "/api/v1/devices/{scheme}/{device_id}/faults/{kind}/clear"): OPS,
    ("GET", "/api/v1/kpi"): OPS,
    ("GET", "/api/v1/alerts/stream"): OPS,
    ("GET", "/api/v1/alerts"): OPS,
    ("GET", "/api/v1/users"): frozenset({A}),
    ("POST", "/api/v1/users"): frozenset({A}),
    ("POST", "/api/v1/users/{username:path}/disable"): frozenset({A}),
    ("POST", "/api/v1/users/{username:path}/enable"): frozenset({A}),
    ("POST", "/api/v1/users/{username:path}/reset"): frozenset({A}),
    ("GET", "/api/v1/audit"): frozenset({M, A}),
    ("GET", "/carer"): PUBLIC,
    ("POST", "/carer/api/login"): PUBLIC,
    ("POST", "/carer/api/logout"): frozenset({C}),
    ("POST", "/carer/api/presence"): frozenset({C}),
    ("POST", "/carer/api/actions"): frozenset({C}),
    ("GET", "/carer/api/state"): frozenset({C}),
    ("GET", "/carer/api/stream"): frozenset({C}),
    ("GET", "/api/v1/reports/{scheme}/response"): frozenset({M, CO}),
    ("GET", "/api/v1/reports/{scheme}/kpi"): frozenset({M, CO}),
    ("GET", "/api/v1/reports/{scheme}/notifiable"): frozenset({M, CO}),
    ("GET", "/api/v1/reports/{scheme}/visits"): frozenset({M, CO}),
    ("GET", "/api/v1/reports/{scheme}/schedule3"): frozenset({M, CO}),
    ("GET", "/api/v1/visits/{scheme}"): OPS,
    ("POST", "/api/v1/visits/{scheme}/{visit_id}/cancel"): OPS,
    ("POST", "/api/v1/visits/{scheme}/{visit_id}/move"): OPS,
    ("POST", "/api/v1/visits/{scheme}/{visit_id}/contacted"): OPS,
    ("POST", "/api/v1/visits/{scheme}/extra"): OPS,
    ("GET", "/carer/api/run"): frozenset({C}),
    ("POST", "/carer/api/visits"): frozenset({C}),
    ("GET", "/reports"): frozenset({M, CO}),
}

SIGN_IN = ("/api/v1/session", "/carer/api/login")

PATH_VALUES = {
    "scheme": "hazelhurst-court",
    "carer_id": "cw-01",
    "device_id": "hzc-a-001-pendant",
    "kind": "low_battery",
    "username:path": "matrix-target",
    "visit_id": "r1-01",
}


def routes() -> list[tuple[str, str]]:
    return sorted((m, r.path) for r in route_table() for m in r.methods or ())


def test_every_route_has_exactly_the_rule_the_product_states() -> None:
    assert set(routes()) == set(EXPECTED), "a route was added or removed: give it a rule here"
    for route in route_table():
        (rule,) = access_rules(route)
        for method in route.methods or ():
            want = EXPECTED[(method, route.path)]
            if want == PUBLIC:
                assert rule.public, route.path
            elif want == DOCS:
                assert rule.docs, route.path
            else:
                assert not rule.public and not rule.docs and rule.roles == want, route.path


def _url(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path.replace("{alarm_id}", str(uuid.uuid4()))


def _body(method: str, path: str) -> dict[str, Any] | None:
    if method != "POST":
        return None
    bodies: dict[str, dict[str, Any]] = {
        "/api/v1/session": {"username": "nobody-here", "password": "wrong-secret"},
        "/carer/api/login": {"scheme": "hazelhurst-court", "carer_id": "cw-09", "token": "nope"},
        "/api/v1/users": {"username": f"made-{uuid.uuid4().hex[:6]}", "role": "manager"},
        "/carer/api/presence": {"what": "heartbeat"},
        "/carer/api/actions": {"action": "accept", "alarm_id": str(uuid.uuid4())},
    }
    if path.endswith("/status"):
        return {"status": "available"}
    if path.endswith("/maintenance"):
        return {"minutes": 0}
    alarm_actions: dict[str, dict[str, Any]] = {
        "assign": {"carers": ["cw-01"]},
        "accept": {"carer_id": "cw-01"},
        "arrived": {"carer_id": "cw-01"},
        "resolve": {"outcome": "false_alarm"},
        "notes": {"note": "called back"},
        "silence": {"minutes": 5},
    }
    if "/api/v1/alarms/" in path and path.rsplit("/", 1)[-1] in alarm_actions:
        return alarm_actions[path.rsplit("/", 1)[-1]]
    return bodies.get(path, {})


@pytest.fixture
def signed_in(gateway: GatewayEnv) -> Iterator[tuple[GatewayEnv, dict[Role, httpx.Client]]]:
    gateway.process.start()
    store = gateway.process.store()
    store.add("matrix-target", Role.COMMISSIONER)
    yield gateway, {role: gateway.process.api(role) for role in Role}


def _call(client: httpx.Client, method: str, path: str) -> int:
    url, body = _url(path), _body(method, path)
    if path.endswith("/stream"):
        with client.stream(method, url, timeout=httpx.Timeout(5, read=5)) as r:
            return r.status_code
    return client.request(method, url, json=body).status_code


def test_each_role_gets_exactly_what_it_should(
    signed_in: tuple[GatewayEnv, dict[Role, httpx.Client]],
) -> None:
    gw, clients = signed_in
    anonymous = httpx.Client(base_url=gw.process.url, timeout=10)
    wrong: list[str] = []
    # Routes that end the session last, each on a session of its own.
    ordered = sorted(EXPECTED, key=lambda k: k[0] == "DELETE" or k[1].endswith("/logout"))
    for method, path in ordered:
        rule = EXPECTED[(method, path)]
        status = _call(anonymous, method, path)
        if rule == PUBLIC or rule == DOCS:
            # (the sign-in routes answer these wrong secrets with 401, as they should)
            if status == 403 or (status == 401 and path not in SIGN_IN):
                wrong.append(f"anonymous {method} {path}: {status}")
            continue
        if status != 401:
            wrong.append(f"anonymous {method} {path}: {status}, expected 401")
        for role in Role:
            client = clients[role]
            if method == "DELETE" or path.endswith("/logout"):
                client = gw.process.sign_in(gw.process.account(role))
            status = _call(client, method, path)
            allowed = role in rule
            if allowed and status in (401, 403) and not (role is C and "{alarm_id}" in path):
                wrong.append(f"{role} {method} {path}: {status}, expected access")
            if not allowed and status != 403:
                wrong.append(f"{role} {method} {path}: {status}, expected 403")
            if status >= 500:
                wrong.append(f"{role} {method} {path}: {status}")
    assert not wrong, "\n".join(wrong)


def personal_data() -> list[str]:
    """Strings that must never leave the gateway without a session: names, notes, refs."""
    s = load_scheme(SCHEME)
    out = [r.display_name for r in s.residents] + [c.display_name for c in s.carers]
    out += [r.client_ref for r in s.residents]
    out += [r.care_notes for r in s.residents if len(r.care_notes) > 12]
    return [x for x in out if x]


def test_no_unauthenticated_route_returns_personal_data(night: Night, gateway: GatewayEnv) -> None:
    gateway.process.start()
    night.on_shift({"cw-01": "A-012"})
    night.press(device_in("A-013"))
    night.wait_dispatch("cw-01", "offer")  # an open alarm with a resident behind it
    anonymous = httpx.Client(base_url=gateway.process.url, timeout=10)
    secret = personal_data()
    for method, path in EXPECTED:
        if path.endswith("/stream"):
            continue  # streams refuse before they start: covered by the matrix
        r = anonymous.request(method, _url(path), json=_body(method, path))
        leaked = [x for x in secret if x in r.text]
        assert not leaked, f"{method} {path} ({r.status_code}) shows {leaked[:3]}"
    # ...while a control room does see the alarm.
    alarms = gateway.process.api(R).get("/api/v1/alarms").json()
    assert alarms and alarms[0]["resident_ref"]


def test_a_carer_sees_and_acts_on_their_own_alarm_only(night: Night, gateway: GatewayEnv) -> None:
    gateway.process.start()
    night.on_shift({"cw-01": "A-012", "cw-02": "B-050"})
    night.press(device_in("A-013"))
    offer = night.wait_dispatch("cw-01", "offer")
    alarm_id = str(offer["alarm_id"])
    mine = gateway.process.sign_in(gateway.process.account(C, ("hazelhurst-court", "cw-01")))
    other = gateway.process.sign_in(gateway.process.account(C, ("hazelhurst-court", "cw-02")))

    seen = mine.get(f"/api/v1/alarms/{alarm_id}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["alarm"]["alarm_id"] == alarm_id
    assert seen.json()["decisions"] == []  # colleagues' travel times are not a carer's business

    refused = other.get(f"/api/v1/alarms/{alarm_id}")
    assert refused.status_code == 403 and "not offered to you" in refused.json()["detail"]
    act = other.post("/carer/api/actions", json={"action": "accept", "alarm_id": alarm_id})
    assert act.status_code == 403
    state = other.get("/carer/api/state").json()
    assert state["offers"] == [] and state["alarms"] == []
    assert gateway.process.api(R).get(f"/api/v1/alarms/{alarm_id}").status_code == 200
