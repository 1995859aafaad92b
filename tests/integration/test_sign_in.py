"""Signing in against a running gateway: uniform errors, the limiter, sessions that end at
logout and when a user is disabled, malformed headers, and the audit trail."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import httpx
import psycopg
import pytest

from api_models import Role
from tests.conftest import REPO, GatewayEnv, wait_for

pytestmark = pytest.mark.integration


def sign_in(base: str, username: str, password: str) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/session", json={"username": username, "password": password})


def test_unknown_user_and_wrong_secret_get_the_same_answer(gateway: GatewayEnv) -> None:
    gateway.process.start()
    base = gateway.process.url
    real = gateway.process.account(Role.MANAGER)
    unknown = sign_in(base, "no-such-user", "whatever-secret")
    wrong = sign_in(base, real.username, "whatever-secret")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()
    assert unknown.json()["detail"] == "wrong user name or secret"
    gateway.process.store().set_disabled(real.username, True)
    disabled = sign_in(base, real.username, real.password)
    assert disabled.status_code == 401 and disabled.json() == unknown.json()
    # The carer page: an unknown carer and a wrong token look the same too.
    carer = gateway.process.account(Role.CARER)
    page = f"{base}/carer/api/login"
    a = httpx.post(page, json={"scheme": "hazelhurst-court", "carer_id": "cw-99", "token": "x" * 8})
    b = httpx.post(page, json={"scheme": "hazelhurst-court", "carer_id": "cw-01", "token": "x" * 8})
    assert a.status_code == b.status_code == 401 and a.json() == b.json()
    ok = httpx.post(
        page, json={"scheme": "hazelhurst-court", "carer_id": "cw-01", "token": carer.password}
    )
    assert ok.status_code == 200
    cookie = ok.cookies.get("telecare_session")
    assert cookie and carer.password not in cookie  # an opaque session id, never the token
    set_cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "max-age=" in set_cookie


def test_repeated_failures_are_limited_per_account_and_per_address(gateway: GatewayEnv) -> None:
    gateway.process.env["TELECARE_AUTH__MAX_ACCOUNT_FAILURES"] = "3"
    gateway.process.env["TELECARE_AUTH__MAX_ADDRESS_FAILURES"] = "6"
    gateway.process.start()
    base = gateway.process.url
    real = gateway.process.account(Role.MANAGER)
    for _ in range(3):
        assert sign_in(base, real.username, "guess").status_code == 401
    limited = sign_in(base, real.username, real.password)  # even the right secret, for now
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "try again" in limited.json()["detail"]
    # Unknown names are limited exactly like real ones (no way to tell them apart).
    for _ in range(3):
        assert sign_in(base, "ghost", "guess").status_code == 401
    assert sign_in(base, "ghost", "guess").status_code == 429
    # Six failures from this address in all: a fresh name from here is refused too.
    other = gateway.process.account(Role.COMMISSIONER)
    assert sign_in(base, other.username, other.password).status_code == 429


def test_logout_ends_the_session_for_token_and_cookie(gateway: GatewayEnv) -> None:
    gateway.process.start()
    base = gateway.process.url
    account = gateway.process.account(Role.CONTROL_ROOM)
    r = sign_in(base, account.username, account.password)
    token, cookie = r.json()["token"], r.cookies["telecare_session"]
    assert token == cookie  # one session, two ways to present it
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{base}/api/v1/alarms", headers=bearer).status_code == 200
    with httpx.Client(base_url=base, cookies={"telecare_session": cookie}) as browser:
        assert browser.get("/api/v1/alarms").status_code == 200
        out = browser.delete("/api/v1/session")
        assert out.status_code == 200
        assert "telecare_session" in out.headers["set-cookie"]  # the browser forgets it
    after = httpx.get(f"{base}/api/v1/alarms", headers=bearer)
    assert after.status_code == 401 and "sign in again" in after.json()["detail"]


def test_a_disabled_user_is_locked_out_at_once(gateway: GatewayEnv) -> None:
    gateway.process.start()
    manager = gateway.process.sign_in(gateway.process.account(Role.MANAGER))
    assert manager.get("/api/v1/carers").status_code == 200
    # Disabled from the command line, in another process, while the gateway runs.
    env = {**gateway.process.env}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "users", "disable", "test-manager"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert manager.get("/api/v1/carers").status_code == 401
    # And from the API, by an admin: the stream and every request end for that user.
    control = gateway.process.sign_in(gateway.process.account(Role.CONTROL_ROOM))
    admin = gateway.process.api(Role.ADMIN)
    name = gateway.process.account(Role.CONTROL_ROOM).username
    # (account() re-reads the dev file; the session made above is still the live one)
    assert control.get("/api/v1/alarms").status_code == 200
    assert admin.post(f"/api/v1/users/{name}/disable").json()["disabled"] is True
    assert control.get("/api/v1/alarms").status_code == 401
    assert admin.post(f"/api/v1/users/{name}/disable").status_code == 200  # idempotent
    assert admin.post("/api/v1/users/nobody/disable").status_code == 404


@pytest.mark.parametrize(
    "header",
    [
        b"Bearer \xff\xfe\xfd",
        "Bearer ünïcödé-token-ünïcödé-token".encode(),
        b"Basic dXNlcjpwYXNz",
        b"Bearer",
        b"Bearer " + b"A" * 5000,
        b"bearer not/a+token==",
    ],
)
def test_malformed_authorization_gets_401_never_500(gateway: GatewayEnv, header: bytes) -> None:
    if gateway.process.proc is None:
        gateway.process.start()
    r = httpx.get(f"{gateway.process.url}/api/v1/alarms", headers={"Authorization": header})
    assert r.status_code == 401, r.text
    assert r.json()["detail"]
    cookie = httpx.get(
        f"{gateway.process.url}/carer/api/state", headers={"Cookie": b"telecare_session=\xff;"}
    )
    assert cookie.status_code == 401


def test_audit_trail_records_who_did_what_and_refuses_change(gateway: GatewayEnv) -> None:
    gateway.process.start()
    base = gateway.process.url
    assert sign_in(base, "mallory", "guess").status_code == 401
    control = gateway.process.api(Role.CONTROL_ROOM)
    url = "/api/v1/carers/hazelhurst-court/cw-02/status"
    assert control.post(url, json={"status": "on_break"}).status_code == 202
    commissioner = gateway.process.api(Role.COMMISSIONER)
    assert commissioner.get("/api/v1/audit").status_code == 403
    manager = gateway.process.api(Role.MANAGER)

    def entries() -> list[dict[str, object]] | None:
        r = manager.get("/api/v1/audit", params={"limit": 500})
        rows = r.json() if r.status_code == 200 else []
        actions = {(e["action"], e["outcome"]) for e in rows}
        want = {
            ("session.sign_in", "failed"),
            ("session.sign_in", "ok"),
            ("carer.status", "ok"),
            ("access.denied", "denied"),
        }
        return rows if want <= actions else None

    rows = wait_for(entries, 30, what="audit entries in the database")
    status = next(e for e in rows if e["action"] == "carer.status")
    name = gateway.process.account(Role.CONTROL_ROOM).username
    assert status["username"] == name and status["role"] == "control_room"
    assert status["target"] == "hazelhurst-court/cw-02" and status["address"] == "127.0.0.1"
    assert status["detail"] == {"status": "on_break"}
    failed = next(e for e in rows if e["outcome"] == "failed")
    assert failed["username"] is None and failed["target"] == "mallory"
    denied = next(e for e in rows if e["action"] == "access.denied")
    assert denied["username"] == "test-commissioner" and denied["target"] == "GET /api/v1/audit"
    # Filters are looked up as typed; one that PostgreSQL cannot hold is a 422, never a 500.
    by_name = manager.get("/api/v1/audit", params={"username": name}).json()
    assert by_name and {e["username"] for e in by_name} == {name}
    for bad in ({"username": "a\x00b"}, {"action": "session.sign_in\x00"}, {"action": "DROP"}):
        r = manager.get("/api/v1/audit", params=bad)
        assert r.status_code == 422, (bad, r.status_code, r.text)

    # The gateway's audit role may add entries but never change or remove one; the trigger
    # refuses the table's owner too.
    with psycopg.connect(gateway.dsn, autocommit=True) as conn:
        conn.execute("SET ROLE telecare_audit_writer")
        conn.execute(
            "INSERT INTO audit_log (entry_id, at, action, outcome, source)"
            " VALUES (%s, now(), 'test.insert', 'ok', 'test')",
            (uuid.uuid4(),),
        )
        for sql in (
            "UPDATE audit_log SET username = 'someone-else'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "SELECT username, detail FROM audit_log",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        conn.execute("RESET ROLE")
        for sql in ("UPDATE audit_log SET username = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql)
        n = conn.execute("SELECT count(*) FROM audit_log").fetchone()
        assert n is not None and n[0] >= len(rows)


def test_cli_users_commands(gateway: GatewayEnv) -> None:
    env = {**gateway.process.env}

    def telecare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = telecare("users", "add", "ops-lead", "--role", "manager")
    assert added.returncode == 0, added.stderr
    assert "secret" in added.stdout
    assert telecare("users", "add", "ops-lead", "--role", "manager").returncode == 2
    listed = telecare("users", "list")
    assert "ops-lead" in listed.stdout and "manager" in listed.stdout
    # Secrets are never listed, and only hashes are stored.
    secret = added.stdout.split("secret")[1].split()[0]
    assert secret not in listed.stdout
    assert secret.encode() not in open(env["TELECARE_AUTH__STORE"], "rb").read()
    assert telecare("users", "reset", "ops-lead").returncode == 0
    assert telecare("users", "disable", "ops-lead").returncode == 0
    assert telecare("users", "disable", "nobody").returncode == 2
    assert os.stat(env["TELECARE_AUTH__STORE"]).st_mode & 0o077 == 0
