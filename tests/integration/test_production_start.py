"""``telecare gateway run`` in production, as an operator starts it: refusals are one line on
stderr that names the setting and never shows a secret; a real password lets it start, whatever
the role is called."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from simulator.gateway_proc import free_port
from tests.conftest import REPO, GatewayEnv, Services, wait_for

# Any 6 characters of a secret in the output count as a leak (the reported leak was a tail).
WINDOW = 6


def secret(label: str) -> str:
    return f"{label}-{secrets.token_urlsafe(18)}"


def assert_no_secret(output: str, values: Iterable[str]) -> None:
    for value in values:
        for i in range(len(value) - WINDOW + 1):
            piece = value[i : i + WINDOW]
            assert piece not in output, f"output shows part of a secret ({piece!r}):\n{output}"


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "gateway", "run"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def secrets_env(services: Services, tmp_path: Path) -> tuple[dict[str, str], list[str]]:
    """A production environment whose every secret is distinctive, and the list of them."""
    db_pw, token, mqtt_pw = secret("dbpw"), secret("token"), secret("mqttpw")
    admin = urlsplit(services.admin_dsn)
    dsn = urlunsplit(admin._replace(netloc=f"telecare:{db_pw}@{admin.hostname}:{admin.port}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECARE_")}
    env.pop("PGPASSWORD", None)
    env.update(
        {
            "TELECARE_ENVIRONMENT": "production",
            "TELECARE_DB__DSN": dsn,
            "TELECARE_HTTP__PORT": str(free_port()),
            "TELECARE_AUTH__STORE": str(tmp_path / "auth.sqlite3"),
            "TELECARE_MQTT__HOST": services.mqtt_host,
            "TELECARE_MQTT__PORT": str(services.mqtt_port),
            "TELECARE_MQTT__USERNAME": "gateway",
            "TELECARE_MQTT__PASSWORD": mqtt_pw,
            # Production wants the outbox's own credential too (docs/security.md).
            "TELECARE_MQTT__PUBLISHER_USERNAME": "gateway-out",
            "TELECARE_MQTT__PUBLISHER_PASSWORD": mqtt_pw,
            "TELECARE_JOURNAL__PATH": str(tmp_path / "journal.sqlite3"),
        }
    )
    return env, [db_pw, token, mqtt_pw]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


DEV_DSN = "postgresql://telecare:telecare@127.0.0.1:54330/telecare"


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"TELECARE_DB__DSN": DEV_DSN}, "TELECARE_DB__DSN"),
        ({"TELECARE_AUTH__COOKIE_SECURE": "false"}, "TELECARE_AUTH__COOKIE_SECURE"),
        ({"TELECARE_DB__DSN": "host=db password={dbpw} nonsense"}, "TELECARE_DB__DSN"),
        ({"TELECARE_HTTP__PORT": "port-{token}"}, "TELECARE_HTTP__PORT"),
        ({"TELECARE_MQTT": '{{"password": "{mqttpw}", nope'}, "TELECARE_MQTT"),
        ({"TELECARE_ENVIRONMENT": "prod-{token}"}, "TELECARE_ENVIRONMENT"),
        ({"TELECARE_SCHEMES": '["{tmp}/missing.yaml"]'}, "scheme error"),
        ({"TELECARE_VISITS": '["{tmp}/missing.visits.yaml"]'}, "cannot read visit schedule"),
        ({"TELECARE_JOURNAL__PATH": "/proc/telecare/journal.sqlite3"}, "cannot open journal"),
        ({"TELECARE_HTTP__PORT": "{busy}"}, "TELECARE_HTTP__HOST/PORT"),
    ],
    ids=[
        "dev-db-password",
        "insecure-cookie",
        "bad-dsn",
        "bad-port",
        "bad-json",
        "bad-environment",
        "missing-scheme",
        "missing-visits",
        "journal",
        "port-in-use",
    ],
)
def test_a_refused_start_is_one_line_that_names_the_setting_and_shows_no_secret(
    secrets_env: tuple[dict[str, str], list[str]],
    busy_port: int,
    tmp_path: Path,
    change: dict[str, str | None],
    setting: str,
) -> None:
    env, values = secrets_env
    db_pw, token, mqtt_pw = values
    short = secrets.token_urlsafe(9)  # 12 characters: a secret, but too short
    values = [*values, short]
    fill = {
        "dbpw": db_pw,
        "token": token,
        "mqttpw": mqtt_pw,
        "short": short,
        "busy": busy_port,
        "tmp": tmp_path,
    }
    for key, value in change.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value.format(**fill)

    result = run_cli(env)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("telecare: refusing to start: ")
    assert setting in lines[0]
    assert_no_secret(output, values)


def test_production_starts_with_the_telecare_role_and_a_real_password(
    gateway: GatewayEnv, services: Services
) -> None:
    """Role and database both called ``telecare`` with a non-development password: the settings
    check passes and the gateway starts. The shared cluster's ``telecare`` role has the
    development password, so the database refuses this one; the gateway keeps running on its
    journal and says so, without the password."""
    db_pw, token = secret("dbpw"), secret("token")
    admin = urlsplit(services.admin_dsn)
    proc = gateway.process
    proc.env.update(
        {
            "TELECARE_ENVIRONMENT": "production",
            "TELECARE_DB__DSN": urlunsplit(
                admin._replace(netloc=f"telecare:{db_pw}@{admin.hostname}:{admin.port}")
            ),
        }
    )
    proc.start()
    wait_for(
        lambda: "password authentication failed" in proc.log_path.read_text(),
        30,
        what="the shipper's connection attempt",
    )
    assert proc.metric("telecare_db_up") == 0
    proc.stop()
    assert_no_secret(proc.log_path.read_text(), [db_pw, token])


def test_production_starts_and_ships_with_its_own_role(
    gateway: GatewayEnv, services: Services
) -> None:
    """A full production start: a role of its own (not the development one) with a password,
    in a fresh database whose name contains "telecare" (which the old substring check refused)."""
    role = f"telecare_prod_{uuid.uuid4().hex[:8]}"
    db_pw, token = secret("dbpw"), secret("token")
    parts = urlsplit(gateway.dsn)
    dsn = urlunsplit(parts._replace(netloc=f"{role}:{db_pw}@{parts.hostname}:{parts.port}"))
    with psycopg.connect(gateway.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{db_pw}'")
        conn.execute(f"GRANT CREATE, CONNECT ON DATABASE {parts.path[1:]} TO {role}")
        conn.execute(f"GRANT ALL ON SCHEMA public TO {role}")
    proc = gateway.process
    try:
        proc.env.update(
            {
                "TELECARE_ENVIRONMENT": "production",
                "TELECARE_DB__DSN": dsn,
            }
        )
        proc.start()
        wait_for(lambda: proc.metric("telecare_db_up") == 1, 30, what="database up")
        with psycopg.connect(gateway.dsn) as conn:
            owner = conn.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'schema_migrations'"
            ).fetchone()
        assert owner == (role,)
        proc.stop()
        assert_no_secret(proc.log_path.read_text(), [db_pw, token])
    finally:
        proc.stop()
        with psycopg.connect(gateway.dsn, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
