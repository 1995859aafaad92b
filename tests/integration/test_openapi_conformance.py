"""The API keeps its own OpenAPI document: schemathesis, with every default check (``--checks
all``) and ``--continue-on-failure``, against a real gateway process, once unauthenticated and
once per role, and it must find nothing.

The event-stream routes (``.../stream``, server-sent events) are excluded here: a stream never
ends, so a generic HTTP fuzzer can only time out on it. Their own tests cover them
(tests/integration/test_handsets.py, tests/integration/test_carer_page.py, tests/test_tui.py).

Runs are bounded (a few examples per operation, a fixed seed) and go two at a time as separate
processes, each single-threaded: schemathesis's threaded workers trip a CPython 3.11 race in
``ast`` (``SystemError: AST constructor recursion depth mismatch``) that has nothing to do with
the API.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from api_models import Role
from dashboard_tui.client import GatewayClient, GatewayRefused
from gateway.api.errors import ApiError
from tests.conftest import GatewayEnv, Services, wait_for
from tests.mqtt_helpers import Recorder

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXCLUDE_STREAMS = r"/stream$"
MAX_EXAMPLES = 5
ALL_PHASES = "examples,coverage,fuzzing,stateful"
# The coverage phase (systematic boundary and negative values, every undeclared method) costs
# most of a run. A manager reaches every route a control-room account does, plus the audit
# trail; a commissioner reaches almost nothing (403). Both skip it to keep the file well
# under three minutes: the control-room and admin runs cover those routes' validation.
PHASES = {"manager": "examples,fuzzing,stateful", "commissioner": "examples,fuzzing,stateful"}


def schemathesis(
    url: str, report_dir: Path, headers: dict[str, str], phases: str = ALL_PHASES
) -> tuple[int, str]:
    """One bounded schemathesis run: its exit code and output."""
    cmd = [
        str(SCHEMATHESIS),
        "run",
        f"{url}/openapi.json",
        "--checks=all",
        "--continue-on-failure",
        f"--max-examples={MAX_EXAMPLES}",
        f"--phases={phases}",
        "--seed=16",
        "--workers=1",
        f"--exclude-path-regex={EXCLUDE_STREAMS}",
        "--request-timeout=10",
        "--generation-database=none",
        "--no-color",
        "--report=junit",
        f"--report-dir={report_dir}",
    ]
    for name, value in headers.items():
        cmd.append(f"--header={name}: {value}")
    # The run is bounded by its count of examples; the timeout only stops a hung run. A quiet
    # machine takes well under a minute per role, a machine with a CPU burner beside it took
    # over 170 s once, so the net is wide.
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=report_dir)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture
def served(gateway: GatewayEnv, services: Services) -> GatewayEnv:
    """A started gateway holding one open alarm, so the alarm routes have something to find."""
    gateway.process.start()
    device = "hzc-a-001-pendant"
    recorder = Recorder(services.mqtt_host, services.mqtt_port, [f"{gateway.topic_root}/#"])
    try:
        recorder.publish(
            f"{gateway.topic_root}/hazelhurst-court/devices/{device}/events",
            {
                "v": 1,
                "event_id": str(uuid.uuid4()),
                "device_id": device,
                "kind": "pendant_press",
                "occurred_at": datetime.now(UTC).isoformat(),
            },
        )
    finally:
        recorder.close()
    control = gateway.process.api(Role.CONTROL_ROOM)
    wait_for(lambda: control.get("/api/v1/alarms").json(), 30, what="the seeded alarm")
    return gateway


def bearer(gateway: GatewayEnv, role: Role) -> dict[str, str]:
    """A session of its own for one role's run (a run may sign itself out: that is a 401)."""
    token = gateway.process.sign_in(gateway.process.account(role)).headers["Authorization"]
    return {"Authorization": token}


def test_every_role_keeps_the_openapi_document(served: GatewayEnv, tmp_path: Path) -> None:
    runs: dict[str, dict[str, str]] = {"unauthenticated": {}}
    runs.update({role.value: bearer(served, role) for role in Role})
    dirs = {name: tmp_path / re.sub(r"\W+", "-", name) for name in runs}
    for d in dirs.values():
        d.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(
                schemathesis,
                served.process.url,
                dirs[name],
                headers,
                PHASES.get(name, ALL_PHASES),
            )
            for name, headers in runs.items()
        }
        results = {name: f.result() for name, f in futures.items()}

    failed = {name: out for name, (code, out) in results.items() if code != 0}
    assert not failed, "\n\n".join(
        f"===== {name} =====\n{out[-12000:]}" for name, out in failed.items()
    )
    for name, (_code, out) in results.items():
        tested = re.search(r"Tested: (\d+)", out)
        assert tested and int(tested.group(1)) >= 15, f"{name}: too few operations tested\n{out}"
        assert re.search(r"\d+ generated, \d+ passed", out), f"{name}:\n{out}"


async def test_the_tui_client_reads_the_error_model(served: GatewayEnv) -> None:
    """Errors from the real gateway reach the control room as a readable sentence."""
    url = served.process.url
    control = served.process.account(Role.CONTROL_ROOM)
    async with GatewayClient(url, username=control.username, password=control.password) as client:
        with pytest.raises(GatewayRefused) as missing:
            await client.alarm_detail(str(uuid.uuid4()))
        assert missing.value.status == 404 and "no alarm" in str(missing.value)
        with pytest.raises(GatewayRefused) as invalid:
            await client.alarm_detail("not-an-alarm-id")
        assert invalid.value.status == 422 and "path.alarm_id" in str(invalid.value)
    commissioner = served.process.account(Role.COMMISSIONER)
    async with GatewayClient(
        url, username=commissioner.username, password=commissioner.password
    ) as client:
        with pytest.raises(GatewayRefused) as refused:
            await client.set_carer_status("hazelhurst-court", "cw-01", "on_break")
        assert refused.value.status == 403 and "commissioner" in str(refused.value)
    async with GatewayClient(url) as anonymous:
        with pytest.raises(GatewayRefused) as unsigned:
            await anonymous.carers()
        assert unsigned.value.status == 401 and "sign in" in str(unsigned.value)
    async with httpx.AsyncClient(headers=bearer(served, Role.CONTROL_ROOM)) as http:
        body = (await http.get(f"{url}/api/v1/alarms/not-an-alarm-id")).json()
    assert ApiError.model_validate(body).errors[0].loc == ["path", "alarm_id"]
