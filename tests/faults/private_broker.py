"""A private Mosquitto for fault runs and benchmarks: its own loopback port, config and
persistence directory, built from the project's development template so a test exercises the
settings the project ships. Never touches the shared development broker.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "mosquitto" / "telecare-dev.conf.in"

# The durability block the project used before receipts: the whole database rewritten on every
# change. Kept here only to measure against (benchmarks/broker_qos1.py, the SIGKILL fault run).
SAVE_ON_EVERY_CHANGE = "autosave_on_changes true\nautosave_interval 1\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_available() -> bool:
    return shutil.which("mosquitto") is not None


def render_config(
    workdir: Path,
    port: int,
    *,
    durability: str | None = None,
    extra: str = "",
) -> str:
    """The development template with this instance's paths; ``durability`` replaces the
    template's ``autosave_*`` lines (None keeps what the project ships)."""
    text = TEMPLATE.read_text()
    subs = {
        "@MQTT_PORT@": str(port),
        "@MOSQUITTO_DIR@": str(workdir),
        "@PERSISTENCE_DIR@": str(workdir / "data"),
        "@PID_FILE@": str(workdir / "mosquitto.pid"),
        "@LOG_FILE@": str(workdir / "mosquitto.log"),
    }
    for key, value in subs.items():
        text = text.replace(key, value)
    # Run as whoever runs the test: no privilege drop, so the temp directory stays writable.
    lines = [
        f"user {getpass.getuser()}" if ln.startswith("user ") else ln for ln in text.splitlines()
    ]
    if durability is not None:
        lines = [ln for ln in lines if not ln.startswith("autosave_")]
        lines.append(durability.strip())
    if extra:
        lines.append(extra.strip())
    return "\n".join(lines) + "\n"


@dataclass
class PrivateBroker:
    """``start``/``kill``/``stop`` one Mosquitto process on a port of its own."""

    workdir: Path
    durability: str | None = None
    extra: str = ""
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> Path:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            render_config(self.workdir, self.port, durability=self.durability, extra=self.extra)
        )
        return conf

    def start(self, timeout: float = 20.0) -> None:
        conf = self.write_config()
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self.proc.returncode}: {self.log_tail()}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto not listening on {self.port}: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL: no chance to write its persistence file."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file on a clean exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def env_without_telecare() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("TELECARE_")}
