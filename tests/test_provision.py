"""``telecare devices provision``: hashes the broker accepts, an ACL that grants each client
exactly its own topics, and secrets that never leak by default. The same files are proved
against a real broker in tests/integration/test_broker_security.py."""

from __future__ import annotations

import json
import os
import ssl
import stat
from pathlib import Path

import pytest
from paho.mqtt.client import topic_matches_sub
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from devices.topics import TopicLayout
from gateway.broker_conn import connection_options, tls_context
from gateway.cli import app
from gateway.config import MqttSettings, Settings
from gateway.provision import (
    Access,
    Kind,
    Principal,
    ProvisionError,
    hash_password,
    plan,
    provision,
    read_password_file,
    verify_password,
)
from tests.conftest import REPO, SCHEME
from tests.engine_helpers import HZC

runner = CliRunner()
L = TopicLayout()
# A line `mosquitto_passwd -b file alice secret` wrote (Mosquitto 2.0.11).
MOSQUITTO_LINE = (
    "alice:$7$101$Fasw38f+SdEHn6ye$ymvYdYW5WZPuElKrBQ4I7sZT3bSEkz9M7rJpiJEm/jGAsip/13rAMoSNnt"
    "KEPcHI46uXAshquEgD/K0y9vm/qQ=="
)


def _can(p: Principal, access: Access, topic: str) -> bool:
    ok = {Access.READ: {Access.READ, Access.READWRITE}, Access.WRITE: {Access.WRITE}}
    ok[Access.WRITE].add(Access.READWRITE)
    return any(g.access in ok[access] and topic_matches_sub(g.topic, topic) for g in p.grants)


def test_hashes_are_mosquitto_passwd_compatible() -> None:
    _, stored = MOSQUITTO_LINE.split(":", 1)
    assert verify_password("secret", stored)
    assert not verify_password("secret2", stored)
    salt = bytes.fromhex("15ab30dfc7fe49d1079fac9e")  # the salt in MOSQUITTO_LINE
    assert hash_password("secret", salt) == stored
    mine = hash_password("another secret")
    assert mine.startswith("$7$101$") and verify_password("another secret", mine)
    assert hash_password("another secret") != mine, "a fresh salt every time"


def test_each_client_gets_exactly_its_own_topics() -> None:
    principals = plan([HZC], L)
    by_user = {p.username: p for p in principals}
    ingest, outbox = by_user["telecare-gateway"], by_user["telecare-gateway-out"]
    gw = Principal("gateway", Kind.GATEWAY, None, None, ingest.grants + outbox.grants)
    devices = [p for p in principals if p.kind is Kind.DEVICE]
    carers = [p for p in principals if p.kind is Kind.CARER]
    assert len(carers) == len(HZC.carers)
    assert {p.subject for p in devices} == {
        d.device_id for d in HZC.devices if d.zigbee_friendly_name is None
    }
    a, b = devices[0], devices[1]
    assert _can(a, Access.WRITE, L.device_events(HZC.id, str(a.subject)))
    assert not _can(a, Access.WRITE, L.device_events(HZC.id, str(b.subject)))
    assert not _can(a, Access.WRITE, L.device_events("other-scheme", str(a.subject)))
    assert not _can(a, Access.READ, L.device_events(HZC.id, str(a.subject)))
    own_receipts = f"{L.root}/{HZC.id}/devices/{a.subject}/receipts"
    assert _can(a, Access.READ, own_receipts)
    assert not _can(a, Access.READ, own_receipts.replace(str(a.subject), str(b.subject)))
    c1, c2 = carers[0], carers[1]
    for leaf in ("actions", "presence", "visits"):
        assert _can(c1, Access.WRITE, L.carer(HZC.id, str(c1.subject), leaf))
        assert not _can(c1, Access.WRITE, L.carer(HZC.id, str(c2.subject), leaf))
    assert _can(c1, Access.READ, L.carer(HZC.id, str(c1.subject), "dispatch"))
    assert not _can(c1, Access.READ, L.carer(HZC.id, str(c2.subject), "dispatch"))
    assert not _can(c1, Access.WRITE, L.carer(HZC.id, str(c1.subject), "dispatch"))
    # The gateway: everything it reads (ingest) and publishes (outbox, receipts), nothing of
    # the handsets' or devices' side.
    for topic in (
        L.device_events(HZC.id, str(a.subject)),
        L.callouts(HZC.id),
        L.carer(HZC.id, "cw-01", "actions"),
        L.carer(HZC.id, "cw-01", "presence"),
        L.carer(HZC.id, "cw-01", "visits"),
        f"{L.zigbee_root}/hzc-a-001-front-door",
    ):
        assert _can(gw, Access.READ, topic), topic
        assert not _can(gw, Access.WRITE, topic), topic
    for topic in (
        L.carer(HZC.id, "cw-01", "dispatch"),
        L.control_alerts(HZC.id),
        L.careline_status(HZC.id, "c-1"),
        own_receipts,
        f"{L.root}/{HZC.id}/careline/receipts",
    ):
        assert _can(gw, Access.WRITE, topic), topic
    assert not _can(gw, Access.READ, "telecare/other-scheme/devices/x/events")
    # Each connection only what it uses: ingest publishes receipts, the outbox the rest.
    assert not any(g.access is not Access.WRITE for g in outbox.grants)
    assert _can(ingest, Access.WRITE, own_receipts)
    assert not _can(ingest, Access.WRITE, L.carer(HZC.id, "cw-01", "dispatch"))
    assert not _can(outbox, Access.WRITE, own_receipts)
    careline = by_user[f"{HZC.id}/careline"]
    assert _can(careline, Access.WRITE, L.callouts(HZC.id))
    assert _can(careline, Access.READ, L.careline_status(HZC.id, "c-1"))
    assert not _can(careline, Access.WRITE, L.device_events(HZC.id, str(a.subject)))


def test_rerun_keeps_issued_credentials_and_rotates_on_request() -> None:
    principals = plan([HZC], L)
    first, entries = provision(principals, {})
    assert len(first.created) == len(principals) and not first.kept
    secrets = {n.principal.username: n.secret for n in first.created}
    assert len(set(secrets.values())) == len(secrets), "no shared secrets"
    again, entries2 = provision(principals, {**entries, "gone/device/x": "$7$..."})
    assert again.created == [] and entries2 == entries and again.removed == ["gone/device/x"]
    pendant = f"{HZC.id}/device/hzc-a-001-pendant"
    rotated, entries3 = provision(principals, entries, rotate=[pendant])
    assert [n.principal.username for n in rotated.created] == [pendant]
    assert entries3[pendant] != entries[pendant]
    assert verify_password(rotated.created[0].secret, entries3[pendant])
    assert {u: h for u, h in entries3.items() if u != pendant} == {
        u: h for u, h in entries.items() if u != pendant
    }
    with pytest.raises(ProvisionError, match="unknown"):
        provision(principals, entries, rotate=["nobody"])
    with pytest.raises(ProvisionError, match="twice"):
        plan([HZC, HZC], L)


def _files(tmp_path: Path) -> list[str]:
    return [
        "devices", "provision", "-s", str(SCHEME),
        "--password-file", str(tmp_path / "passwd"), "--acl-file", str(tmp_path / "acl"),
    ]  # fmt: skip


def test_cli_never_prints_or_loses_a_secret(tmp_path: Path) -> None:
    refused = runner.invoke(app, _files(tmp_path))
    assert refused.exit_code == 2 and "--secrets-file" in refused.output
    assert not (tmp_path / "passwd").exists() and not (tmp_path / "acl").exists()

    secrets_file = tmp_path / "new-secrets.json"
    ok = runner.invoke(app, [*_files(tmp_path), "--secrets-file", str(secrets_file)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(secrets_file.read_text())
    creds = {c["username"]: c["password"] for c in doc["credentials"]}
    assert not any(s in ok.output for s in creds.values())
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "passwd").st_mode) == 0o640
    stored = read_password_file(tmp_path / "passwd")
    assert stored.keys() == creds.keys()
    assert all(verify_password(creds[u], h) for u, h in stored.items())

    again = runner.invoke(app, [*_files(tmp_path), "--secrets-file", str(secrets_file)])
    assert again.exit_code == 2 and "exists" in again.output, "secrets are never overwritten"
    unchanged = runner.invoke(app, _files(tmp_path))
    assert unchanged.exit_code == 0 and "0 new" in unchanged.output
    assert read_password_file(tmp_path / "passwd") == stored

    shown = runner.invoke(
        app, [*_files(tmp_path), "--rotate", "telecare-gateway", "--show-secrets"]
    )
    assert shown.exit_code == 0, shown.output
    [line] = [x for x in shown.output.splitlines() if x.startswith("telecare-gateway\t")]
    secret = line.split("\t", 1)[1]
    assert verify_password(secret, read_password_file(tmp_path / "passwd")["telecare-gateway"])


def _blocks(text: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    user = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("user "):
            user = line[5:]
            blocks[user] = []
        else:
            assert user is not None, f"a rule outside any user block: {line!r}"
            blocks[user].append(line)
    return blocks


def test_acl_example_is_what_the_generator_writes(tmp_path: Path) -> None:
    ok = runner.invoke(
        app,
        [
            *_files(tmp_path), "--secrets-file", str(tmp_path / "s.json"),
            "--topic-root", "telecare", "--zigbee-root", "zigbee2mqtt",
            "--gateway-user", "telecare-gateway",
        ],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    generated = _blocks((tmp_path / "acl").read_text())
    example = _blocks((REPO / "deploy" / "mosquitto" / "acl.example").read_text())
    assert example, "acl.example has no user blocks"
    for user, lines in example.items():
        assert generated.get(user) == lines, f"acl.example's block for {user} is out of date"


def test_tls_settings_are_checked_and_used(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="TLS is off"):
        MqttSettings(server_name="broker.example.org")
    with pytest.raises(ValidationError, match="not found"):
        MqttSettings(tls=True, ca_file=tmp_path / "missing.crt")
    with pytest.raises(ValidationError, match="CLIENT_CERT"):
        MqttSettings(tls=True, client_key=tmp_path / "k.pem")
    plain = MqttSettings(username="u")
    assert tls_context(plain) is None and connection_options(plain)["tls_context"] is None
    ctx = tls_context(MqttSettings(tls=True, server_name="broker.example.org"))
    assert ctx is not None and ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    with pytest.raises(ValidationError, match="PUBLISHER_USERNAME"):
        Settings(
            environment="production",
            mqtt=MqttSettings(username="telecare-gateway"),
            db={"dsn": "postgresql://gw:a-real-secret@db.example.org/care"},
        )
    both = MqttSettings(
        username="telecare-gateway",
        password=SecretStr("a"),
        publisher_username="telecare-gateway-out",
        publisher_password=SecretStr("b"),
    )
    assert connection_options(both)["username"] == "telecare-gateway"
    assert connection_options(both, publisher=True)["username"] == "telecare-gateway-out"
    assert connection_options(both, publisher=True)["password"] == "b"
    with pytest.raises(ValidationError, match="not on this host"):
        Settings(
            environment="production",
            mqtt=MqttSettings(host="broker.example.org", port=8883),
            db={"dsn": "postgresql://gw:a-real-secret@db.example.org/care"},
        )
