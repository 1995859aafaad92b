"""The TUI's client signs in, and signs in again when the gateway says its session ended."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from dashboard_tui.__main__ import parse_args
from dashboard_tui.client import GatewayClient

BASE = "http://gateway.test"


async def test_client_signs_in_before_its_first_request_and_after_a_401() -> None:
    tokens = iter(["session-one-0123456789abcdef", "session-two-0123456789abcdef"])
    seen: list[str | None] = []
    logins: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/session":
            logins.append(json.loads(request.content))
            return httpx.Response(200, json={"token": next(tokens)})
        seen.append(request.headers.get("authorization"))
        if len(seen) == 2:
            return httpx.Response(401, json={"detail": "your session has ended"})
        return httpx.Response(200, json=[])

    transport = httpx.MockTransport(handler)
    async with GatewayClient(BASE, transport=transport, username="u", password="p") as gw:
        assert await gw.carers() == []
        assert await gw.carers() == []
    assert logins == [{"username": "u", "password": "p"}] * 2
    assert seen == [
        "Bearer session-one-0123456789abcdef",
        "Bearer session-one-0123456789abcdef",
        "Bearer session-two-0123456789abcdef",
    ]


def test_the_tui_finds_the_development_control_room_account(tmp_path: Path) -> None:
    creds = tmp_path / "dev-credentials.json"
    creds.write_text(
        json.dumps(
            {"accounts": {"control_room": {"username": "dev-control", "password": "s3cret"}}}
        )
    )
    args = parse_args(["--credentials", str(creds)])
    assert (args.user, args.password) == ("dev-control", "s3cret")
    pw = tmp_path / "pw"
    pw.write_text("other\n")
    args = parse_args(["--user", "ops", "--password-file", str(pw), "--credentials", str(creds)])
    assert (args.user, args.password) == ("ops", "other")


def test_an_operator_named_without_a_password_is_never_signed_in_as_someone_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    creds = tmp_path / "dev-credentials.json"
    creds.write_text(
        json.dumps({"accounts": {"control_room": {"username": "dev-control", "password": "x"}}})
    )
    monkeypatch.delenv("TELECARE_API_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(SystemExit):
        parse_args(["--user", "ops-anna", "--credentials", str(creds)])
    assert "no password for ops-anna" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed-secret")
    args = parse_args(["--user", "ops-anna", "--credentials", str(creds)])
    assert (args.user, args.password) == ("ops-anna", "typed-secret")
