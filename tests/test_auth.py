"""Accounts, sessions and the sign-in limiter (no services needed), and a production app's
cookie and docs rules, in process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api_models import Role
from gateway.auth.limiter import Limits, SignInLimiter
from gateway.auth.store import UserError, UserStore
from gateway.config import Settings
from gateway.service import Gateway
from tests.conftest import SCHEME


class Wall:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def test_secrets_are_stored_only_as_argon2_hashes(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "auth.sqlite3")
    secret = store.add("ops", Role.MANAGER)
    raw = (tmp_path / "auth.sqlite3").read_bytes()
    assert secret.encode() not in raw and b"$argon2id$" in raw
    assert store.verify("ops", secret) is not None
    assert store.verify("ops", secret + "x") is None
    assert store.verify("nobody", secret) is None
    with pytest.raises(UserError):
        store.add("ops", Role.ADMIN)
    with pytest.raises(UserError):
        store.add("hazelhurst-court/cw-01", Role.CARER)  # a carer needs scheme and carer id
    with pytest.raises(UserError):
        store.add("odd", Role.CARER, "hazelhurst-court", "cw-01")  # name must match


def test_sessions_end_at_expiry_when_idle_at_logout_disable_and_reset(tmp_path: Path) -> None:
    wall = Wall()
    store = UserStore(
        tmp_path / "a.sqlite3", session_ttl_s=3600, session_idle_s=600, wall_clock=wall
    )
    secret = store.add("ops", Role.CONTROL_ROOM)
    token, _ = store.open_session("ops", "10.0.0.1")
    assert store.session(token) is not None
    assert store.session(token + "x") is None
    wall.t += 599
    assert store.session(token) is not None  # touched: idle time starts again
    wall.t += 599
    assert store.session(token) is not None
    wall.t += 601
    assert store.session(token) is None  # idle too long

    token, _ = store.open_session("ops", None)
    for _ in range(6):
        wall.t += 590
        assert store.session(token) is not None
    wall.t += 590
    assert store.session(token) is None  # past the fixed expiry, however active

    token, _ = store.open_session("ops", None)
    s = store.session(token)
    assert s is not None
    store.end_session(s.id_hash)
    assert store.session(token) is None

    token, _ = store.open_session("ops", None)
    store.set_disabled("ops", True)
    assert store.session(token) is None and store.verify("ops", secret) is None
    store.set_disabled("ops", False)
    token, _ = store.open_session("ops", None)
    new = store.reset("ops")
    assert store.session(token) is None and store.verify("ops", new) is not None


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=400), min_size=1, max_size=40),
    cap=st.integers(min_value=1, max_value=6),
)
def test_the_limiter_never_allows_more_failures_than_the_cap_in_a_window(
    gaps: list[float], cap: int
) -> None:
    now = [0.0]
    limiter = SignInLimiter(Limits(cap, 1000, 900.0), clock=lambda: now[0])
    allowed: list[float] = []
    for gap in gaps:
        now[0] += gap
        if limiter.retry_after("ops", "10.0.0.1") is None:
            allowed.append(now[0])
            limiter.failed("ops", "10.0.0.1")
    for i, t in enumerate(allowed):
        in_window = [u for u in allowed[: i + 1] if u > t - 900.0]
        assert len(in_window) <= cap


def test_the_limiter_counts_per_address_across_names_and_forgets_after_the_window() -> None:
    now = [0.0]
    limiter = SignInLimiter(Limits(5, 3, 60.0), clock=lambda: now[0])
    for name in ("a", "b", "c"):
        limiter.failed(name, "10.0.0.9")
    wait = limiter.retry_after("d", "10.0.0.9")
    assert wait is not None and 0 < wait <= 60
    assert limiter.retry_after("d", "10.0.0.10") is None
    now[0] = 61.0
    assert limiter.retry_after("d", "10.0.0.9") is None


def _production_gateway(tmp_path: Path) -> Gateway:
    s = Settings(
        environment="production",
        schemes=[SCHEME],
        db={"dsn": "postgresql://telecare:a-real-secret@127.0.0.1:1/none"},
        journal={"path": tmp_path / "journal.sqlite3"},
        auth={"store": tmp_path / "auth.sqlite3"},
    )
    return Gateway(s)


def test_production_cookies_are_secure_and_docs_need_a_session(tmp_path: Path) -> None:
    gw = _production_gateway(tmp_path)
    secret = gw.users.add("ops", Role.CONTROL_ROOM)

    async def run() -> None:
        transport = httpx.ASGITransport(app=gw.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            assert (await c.get("/docs")).status_code == 401
            assert (await c.get("/openapi.json")).status_code == 401
            r = await c.post("/api/v1/session", json={"username": "ops", "password": secret})
            assert r.status_code == 200
            cookie = r.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
            bearer = {"Authorization": f"Bearer {r.json()['token']}"}
            schema = await c.get("/openapi.json", headers=bearer)
            assert schema.status_code == 200 and "/api/v1/alarms" in schema.json()["paths"]

    asyncio.run(run())
    assert not (tmp_path / "dev-credentials.json").exists()


def test_every_json_route_declares_a_response_model(tmp_path: Path) -> None:
    schema = _production_gateway(tmp_path).app.openapi()
    missing = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            ok = (
                op["responses"].get("200")
                or op["responses"].get("201")
                or op["responses"].get("202")
            )
            content = (ok or {}).get("content", {})
            if "application/json" in content and not content["application/json"].get("schema"):
                missing.append(f"{method.upper()} {path}")
    assert not missing


def test_a_405_names_every_method_of_the_path(tmp_path: Path) -> None:
    gw = _production_gateway(tmp_path)

    async def run() -> None:
        transport = httpx.ASGITransport(app=gw.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            r = await c.options("/api/v1/session")
            assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, POST"
            r = await c.put("/api/v1/users")
            assert r.status_code == 405 and r.headers["allow"] == "GET, POST"

    asyncio.run(run())
