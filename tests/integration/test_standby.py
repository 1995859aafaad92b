"""One gateway per journal, and a warm standby that takes over when it dies (gateway/standby.py).

A second plain ``gateway run`` on a journal in use refuses, naming the holder; one started with
``--standby`` waits without serving, and when the running gateway is SIGKILLed it takes the
journal over: same journal epoch, and a press sent while nobody held the journal gets its
receipt from the standby."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import httpx

from api_models import Role
from devices.scheme import load_scheme
from devices.topics import TopicLayout
from tests.conftest import REPO, SCHEME, GatewayEnv, Services, wait_for
from tests.mqtt_helpers import Recorder

RUN = [sys.executable, "-m", "gateway.cli", "gateway", "run"]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_one_gateway_per_journal_and_a_standby_takes_over(
    services: Services, gateway: GatewayEnv
) -> None:
    proc = gateway.process
    proc.start()
    assert proc.proc is not None
    first_pid = proc.proc.pid
    epoch = proc.api().get("/api/v1/ingest").json()["journal_epoch"]

    # A second gateway on the same journal: refused once the first has not let go in time.
    second = subprocess.run(
        RUN, env=proc.env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 2, second.stderr[-2000:]
    [line] = [x for x in second.stderr.splitlines() if x.startswith("telecare: refusing")]
    assert f"pid {first_pid}" in line and "--standby" in line, line

    log_path = proc.log_path.with_name("standby.log")
    with log_path.open("ab") as log:
        standby = subprocess.Popen(
            [*RUN, "--standby"], env=proc.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for(
            lambda: "taking over when it stops" in log_path.read_text(errors="replace"),
            timeout=60,
            what="the standby to wait for the journal",
        )
        assert standby.poll() is None

        scheme = load_scheme(SCHEME)
        layout = TopicLayout(gateway.topic_root, gateway.zigbee_root)
        pendant = next(
            d for d in scheme.devices if d.type == "pendant" and not d.zigbee_friendly_name
        )
        rec = Recorder(
            services.mqtt_host,
            services.mqtt_port,
            [layout.device_receipts(scheme.id, pendant.device_id)],
        )
        try:
            proc.kill(signal.SIGKILL)
            event_id = str(uuid.uuid4())
            rec.publish(
                layout.device_events(scheme.id, pendant.device_id),
                {
                    "event_id": event_id,
                    "device_id": pendant.device_id,
                    "kind": "pendant_press",
                    "occurred_at": datetime.now(UTC).isoformat(),
                },
            )
            wait_for(lambda: _ready(proc.url), timeout=60, what="the standby to be ready")
            receipt = rec.wait(
                lambda m: m.body.get("event_id") == event_id, 60, "the press's receipt"
            )
            assert receipt.body["status"] == "accepted", receipt.body
        finally:
            rec.close()
        text = log_path.read_text(errors="replace")
        assert "standby: the journal is free; taking over" in text
        client = proc.sign_in(proc.account(Role.CONTROL_ROOM))
        try:
            ingest = client.get("/api/v1/ingest").json()
        finally:
            client.close()
        assert ingest["journal_epoch"] == epoch, "the standby opened another journal"
    finally:
        if standby.poll() is None:
            standby.send_signal(signal.SIGTERM)
            standby.wait(timeout=30)
