"""A gateway child process for one simulator run: its own topic roots, journal, HTTP port,
gateway id and scheme clock, started as an operator would (``python -m gateway.cli``)."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml

from simulator.scenario import REPO

DEFAULT_DSN = "postgresql://telecare:telecare@127.0.0.1:54330/telecare"


def with_hub_interval(scheme_files: list[Path], interval_s: int, out_dir: Path) -> list[Path]:
    """Copies of ``scheme_files`` in ``out_dir`` whose hubs declare ``heartbeat_interval_s``.

    IP hubs may heartbeat every 15 minutes (docs/scenarios.md): a night that is about alarms
    need not put 60 hubs' minute-by-minute heartbeats through a shared CI machine at x400."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    for i, path in enumerate(scheme_files):
        data = yaml.safe_load(path.read_text())
        for d in data.get("devices") or []:
            if d.get("type") == "hub":
                d["heartbeat_interval_s"] = interval_s
        copy = out_dir / f"{i}-{path.name}"
        copy.write_text(yaml.safe_dump(data, sort_keys=False))
        out.append(copy)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(
    env: dict[str, str], log_path: Path, url: str, ready_timeout: float = 60.0
) -> subprocess.Popen[bytes]:
    """Start ``python -m gateway.cli gateway run`` as an operator would; return once its
    ``/readyz`` answers 200, or raise with the tail of its log."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "gateway", "run"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"gateway exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.terminate()
    tail = log_path.read_text(errors="replace")[-4000:]
    raise RuntimeError(f"gateway not ready in {ready_timeout}s:\n{tail}")


@dataclass
class GatewayChild:
    scheme_files: list[Path]
    speed: float
    start_utc: datetime
    anchor_real: float
    dsn: str | None = None
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 18830
    tick_s: float = 5.0
    extra_env: dict[str, str] = field(default_factory=dict)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    # A gateway that outlives a glance (the demo's live night) keeps its journal, accounts and
    # log in a directory the operator can find, on a port they know; default: a temporary one.
    state_dir: Path | None = None
    http_port: int | None = None

    def __post_init__(self) -> None:
        if self.state_dir is not None:
            self.state_dir = self.state_dir.resolve()  # the child runs in the repository
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self.workdir = Path(tempfile.mkdtemp(prefix=f"gateway-{self.tag}-", dir=self.state_dir))
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"telecare-sim-{self.tag}-"))
        self.port = self.http_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.topic_root = f"sim{self.tag}"
        self.zigbee_root = f"simz{self.tag}"
        self.gateway_id = f"sim-{self.tag}"
        self.log_path = self.workdir / "gateway.log"
        self.credentials_file = self.workdir / "dev-credentials.json"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELECARE_")}
        files = ", ".join(f'"{p}"' for p in self.scheme_files)
        env.update(
            {
                "TELECARE_ENVIRONMENT": "test",
                "TELECARE_GATEWAY_ID": self.gateway_id,
                "TELECARE_SCHEMES": f"[{files}]",
                "TELECARE_MQTT__HOST": self.mqtt_host,
                "TELECARE_MQTT__PORT": str(self.mqtt_port),
                "TELECARE_MQTT__CLIENT_ID": f"telecare-sim-gw-{self.tag}",
                "TELECARE_MQTT__TOPIC_ROOT": self.topic_root,
                "TELECARE_MQTT__ZIGBEE_ROOT": self.zigbee_root,
                "TELECARE_MQTT__RECONNECT_MAX_S": "2",
                "TELECARE_DB__DSN": self.dsn or DEFAULT_DSN,
                "TELECARE_DB__RETRY_MAX_S": "2",
                "TELECARE_JOURNAL__PATH": str(self.workdir / "journal.sqlite3"),
                "TELECARE_HTTP__PORT": str(self.port),
                "TELECARE_CLOCK__SPEED": repr(self.speed),
                "TELECARE_CLOCK__START": self.start_utc.isoformat(),
                "TELECARE_CLOCK__ANCHOR": repr(self.anchor_real),
                "TELECARE_ENGINE__TICK_S": repr(self.tick_s),
                "TELECARE_JOURNAL__DEDUPE_RETENTION_H": str(self.dedupe_retention_h()),
                "TELECARE_AUTH__STORE": str(self.workdir / "auth.sqlite3"),
                "TELECARE_AUTH__DEV_CREDENTIALS_FILE": str(self.credentials_file),
            }
        )
        env.update(self.extra_env)
        return env

    def dedupe_retention_h(self) -> int:
        """72 h of *scheme* time, however far the scenario's night lies in the past.

        The shipper prunes shipped journal rows by the wall clock (``datetime.now``) while
        their ``received_at`` is scheme time: a night dated a week ago would be pruned at
        once, and a device's resend after that (the receipt contract's backoff) would open
        its alarm a second time. The simulator's verdict caught exactly that (duplicate pages,
        steps after ``resolved``). Until the gateway prunes by its own clock, a spawned
        gateway's window covers the distance from the scenario's start to now.
        """
        behind_h = (datetime.now(UTC) - self.start_utc).total_seconds() / 3600
        return 72 + max(0, math.ceil(behind_h)) + 24

    def start(self, ready_timeout: float = 60.0) -> None:
        self.proc = start_gateway(self.env(), self.log_path, self.url, ready_timeout)

    def describe(self) -> dict[str, object]:
        """Where to reach this gateway: for hints, ``make stop`` and the control-room TUI."""
        return {
            "url": self.url,
            "pid": self.proc.pid if self.proc is not None else None,
            "gateway_id": self.gateway_id,
            "topic_root": self.topic_root,
            "credentials": str(self.credentials_file),
            "auth_store": str(self.workdir / "auth.sqlite3"),
            "log": str(self.log_path),
            "speed": self.speed,
            "start": self.start_utc.isoformat(),
        }

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
