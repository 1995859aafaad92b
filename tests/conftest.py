"""Shared fixtures: the real services (started if absent), fresh databases, gateway processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api_models import Account, Role, load_dev_credentials
from gateway.auth.store import UserStore, carer_username
from gateway.config import Settings
from simulator.gateway_proc import free_port, start_gateway

REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / "scripts" / "services.sh"
SCHEME = REPO / "examples" / "hazelhurst-court.yaml"


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class Services:
    mqtt_host: str
    mqtt_port: int
    admin_dsn: str

    def run(self, action: str) -> None:
        """Drive the local services (``pg-stop``, ``pg-start``...) through the project script."""
        subprocess.run(["bash", str(SERVICES), action], check=True, timeout=600)


@pytest.fixture(scope="session")
def services() -> Services:
    """Real Mosquitto and TimescaleDB on loopback; started by the project script if absent."""
    defaults = Settings()
    dsn = defaults.db.dsn.get_secret_value()
    db = urlsplit(dsn)
    if not (
        _port_open(defaults.mqtt.host, defaults.mqtt.port)
        and _port_open(db.hostname or "127.0.0.1", db.port or 5432)
    ):
        subprocess.run(["bash", str(SERVICES), "ensure"], check=True, timeout=1800)
    return Services(defaults.mqtt.host, defaults.mqtt.port, dsn)


@pytest.fixture
def database(services: Services) -> Iterator[str]:
    """A fresh database with TimescaleDB, dropped afterwards; yields its DSN."""
    name = f"telecare_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(services.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(services.admin_dsn)
    dsn = urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    yield dsn
    for _ in range(20):
        try:
            with psycopg.connect(services.admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            break
        except psycopg.OperationalError:
            time.sleep(1)  # a fault test may have the server restarting


class GatewayProcess:
    """``telecare gateway run`` as a real child process, as an operator would start it.

    ``api(role)`` is an ``httpx.Client`` signed in with an account of that role: the
    development admin and control-room accounts the gateway created on its first start, or an
    account of another role made in the gateway's account store for the test."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env["TELECARE_HTTP__PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: dict[Role, httpx.Client] = {}

    def store(self) -> UserStore:
        return UserStore(Path(self.env["TELECARE_AUTH__STORE"]))

    def account(
        self, role: Role, carer: tuple[str, str] = ("hazelhurst-court", "cw-01")
    ) -> Account:
        """User name and secret of an account with ``role`` (made if need be)."""
        if role in (Role.ADMIN, Role.CONTROL_ROOM):
            creds = load_dev_credentials(Path(self.env["TELECARE_AUTH__DEV_CREDENTIALS_FILE"]))
            assert creds is not None, "the gateway has not written its development accounts"
            account = creds.account(role.value)
            assert account is not None
            return account
        store = self.store()
        if role is Role.CARER:
            name = carer_username(*carer)
            secret = store.reset(name) if store.get(name) else store.add(name, role, *carer)
        else:
            name = f"test-{role.value}"
            secret = store.reset(name) if store.get(name) else store.add(name, role)
        return Account(username=name, password=secret)

    def sign_in(self, account: Account) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=10)
        r = client.post(
            "/api/v1/session", json={"username": account.username, "password": account.password}
        )
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        client.cookies.clear()  # the bearer token alone: the cookie would mask a header bug
        return client

    def api(self, role: Role = Role.CONTROL_ROOM) -> httpx.Client:
        """A client signed in as ``role`` (one per role, closed when the gateway stops)."""
        if role not in self._clients:
            self._clients[role] = self.sign_in(self.account(role))
        return self._clients[role]

    def start(self, ready_timeout: float = 30.0) -> None:
        self.proc = start_gateway(self.env, self.log_path, self.url, ready_timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # A gateway that will not stop: its stacks (SIGUSR1) go into the failure.
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(2)
            self.proc.kill()
            self.proc.wait(timeout=30)
            tail = self.log_path.read_text(errors="replace")[-12000:]
            raise AssertionError(
                f"the gateway did not stop on {sig} within 30 s:\n{tail}"
            ) from None

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


@dataclass
class GatewayEnv:
    topic_root: str
    zigbee_root: str
    dsn: str
    process: GatewayProcess


@pytest.fixture
def gateway(services: Services, database: str, tmp_path: Path) -> Iterator[GatewayEnv]:
    """A gateway on its own topic roots, database, journal and HTTP port (not yet started)."""
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECARE_")}
    env.update(
        {
            "TELECARE_ENVIRONMENT": "test",
            "TELECARE_GATEWAY_ID": f"gw-{tag}",
            "TELECARE_SCHEMES": f'["{SCHEME}"]',
            "TELECARE_MQTT__HOST": services.mqtt_host,
            "TELECARE_MQTT__PORT": str(services.mqtt_port),
            "TELECARE_MQTT__CLIENT_ID": f"telecare-test-{tag}",
            "TELECARE_MQTT__TOPIC_ROOT": f"t{tag}",
            "TELECARE_MQTT__ZIGBEE_ROOT": f"z{tag}",
            "TELECARE_MQTT__RECONNECT_MAX_S": "2",
            "TELECARE_DB__DSN": database,
            "TELECARE_DB__RETRY_MAX_S": "2",
            "TELECARE_JOURNAL__PATH": str(tmp_path / "journal.sqlite3"),
            "TELECARE_HTTP__PORT": str(free_port()),
            "TELECARE_INGEST__MAX_PAYLOAD_BYTES": "4096",
            "TELECARE_AUTH__STORE": str(tmp_path / "auth.sqlite3"),
            "TELECARE_AUTH__DEV_CREDENTIALS_FILE": str(tmp_path / "dev-credentials.json"),
        }
    )
    proc = GatewayProcess(env, tmp_path / "gateway.log")
    yield GatewayEnv(f"t{tag}", f"z{tag}", database, proc)
    proc.stop()


def wait_for(predicate, timeout: float, interval: float = 0.25, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture
def role_clients(gateway: GatewayEnv) -> dict[Role, httpx.Client]:
    """A started gateway and one signed-in ``httpx.Client`` per role (bearer token only)."""
    gateway.process.start()
    return {role: gateway.process.api(role) for role in Role}
