"""The e2e scenarios' own Mosquitto: a broker on a free loopback port for this test session.

The simulated nights judge the product; the shared development broker is used by every other
test on the machine, and its save-on-every-change persistence makes its throughput depend on
how much others have left queued in it. Here persistence is periodic, as in production
(deploy/mosquitto/mosquitto.prod.conf): the product's safety is end to end (journal, receipts),
not in the broker. The broker is started and stopped by this fixture and nothing else.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.gateway_proc import free_port
from tests.conftest import Services


def _open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def sim_broker(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Start a private Mosquitto; yield its port."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.fail("mosquitto is not installed: run make services (make test installs it)")
    d: Path = tmp_path_factory.mktemp("sim-mosquitto")
    port = free_port()
    (d / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "persistence true\n"
        f"persistence_location {d}/\n"
        "autosave_interval 30\n"
        "max_queued_messages 200000\n"
        "max_inflight_messages 1000\n"
        "message_size_limit 262144\n"
        f"log_dest file {d}/mosquitto.log\n"
    )
    if os.geteuid() == 0:
        shutil.chown(d, "mosquitto")  # it drops to the mosquitto user when started as root
    proc = subprocess.Popen([exe, "-c", str(d / "mosquitto.conf")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not _open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"private mosquitto did not start on {port}: {err[-1000:]}")
        time.sleep(0.1)
    yield port
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
