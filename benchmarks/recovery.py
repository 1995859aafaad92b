"""Recovery after SIGKILL: a gateway holding ``--open-alarms`` open alarms over a journal with
72 hours of heartbeats is killed; how long until it is ready again, and until a press sent
while it was down reaches a carer's handset.

One generated scheme (``benchmarks.estate``) with a hub per flat on a 15-minute heartbeat (IP
hubs), so 72 hours of heartbeats from 1,000 hubs is 288,000 journal rows; they are written
into the journal before the first start (dated over the 72 hours before scheme time starts)
and shipped by that first run. Then ``--open-alarms`` presses on distinct residents, with 20
carers logged in and beating; once the engine counts them open, SIGKILL. One more press goes
to the broker while the gateway is down; the clock starts at the restart.

Then the same with a warm standby (``gateway run --standby``, gateway/standby.py) waiting
beside the restarted gateway: SIGKILL, another press while nobody holds the journal, and the
clock starts at the death (no supervisor has to notice it and start a process). Run:
    .venv/bin/python -m benchmarks.recovery [--open-alarms 1000] [--no-standby]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.alarm_latency import NIGHT, SPEED, Handsets
from benchmarks.common import (
    REPO,
    fresh_database,
    gateway_env,
    metrics,
    spawn_gateway,
    stop,
    table,
    wait_ready,
    write_result,
)
from benchmarks.estate import scheme_dict
from devices.scheme import Scheme
from devices.topics import TopicLayout
from gateway.journal import Journal
from simulator.gateway_proc import free_port
from tests.faults.private_broker import PrivateBroker

HUB_HEARTBEAT_S = 900


def prefill(path: Path, scheme: Scheme, hours: float) -> int:
    """Write ``hours`` of hub heartbeats ending at the night's start straight into the journal."""
    j = Journal(path)
    j.open()
    j.close()
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    hubs = [d.device_id for d in scheme.devices if d.type.value == "hub"]
    steps = int(hours * 3600 / HUB_HEARTBEAT_S)
    topic = f"_/{scheme.id}/devices/%s/events"
    n = 0
    conn.execute("BEGIN")
    for s in range(steps):
        at = NIGHT - timedelta(seconds=(steps - s) * HUB_HEARTBEAT_S)
        stamp = at.isoformat()
        rows = []
        for h in hubs:
            eid = uuid.uuid4()
            body = (
                f'{{"v":1,"event_id":"{eid}","device_id":"{h}","kind":"heartbeat",'
                f'"occurred_at":"{stamp}","record_type":"event"}}'
            )
            rows.append(("event", f"{scheme.id}/{h}/{eid}", scheme.id, topic % h, stamp, body))
        conn.executemany(
            "INSERT INTO records (record_type, key, scheme, topic, received_at, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        n += len(rows)
    # A gateway that ran those 72 hours kept each device's last contact as it committed, and
    # applied the events as they came: its engine's watermark is the journal's head.
    last = (NIGHT - timedelta(seconds=HUB_HEARTBEAT_S)).isoformat()
    conn.executemany(
        "INSERT OR REPLACE INTO device_contact (scheme, device_id, received_at) VALUES (?, ?, ?)",
        [(scheme.id, h, last) for h in hubs],
    )
    conn.execute(
        "INSERT INTO engine_state (key, body) VALUES ('watermark', (SELECT max(seq) FROM records))"
    )
    conn.execute("COMMIT")
    conn.close()
    return n


def spawn_profiled(env: dict[str, str], log: Path, out: Path) -> subprocess.Popen[bytes]:
    """The gateway under py-spy (raw collapsed stacks, 250 Hz, every thread) into ``out``."""
    spy = Path(sys.executable).with_name("py-spy")
    cmd = [str(spy), "record", "-r", "250", "--threads", "--format", "raw", "-o", str(out)]
    cmd += ["--", sys.executable, "-m", "gateway.cli", "gateway", "run"]
    with log.open("ab") as sink:
        return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process so far (Linux), None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_alarms(url: str) -> float:
    return sum(v for k, v in metrics(url).items() if k.startswith("telecare_open_alarms"))


def wait_until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:  # a busy gateway may not answer at once
            pass
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def takeover(
    proc: subprocess.Popen[bytes],
    env: dict[str, str],
    work: Path,
    url: str,
    h: Handsets,
    probe: Any,
    result: dict[str, Any],
) -> subprocess.Popen[bytes]:
    """The same again with a warm standby (``gateway run --standby``) waiting beside the
    gateway: SIGKILL it, and time from its death to the standby's ``/readyz`` and to the
    first offer. Returns the standby (now the gateway)."""
    slog = work / "standby.log"
    with slog.open("ab") as out:
        standby = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "gateway", "run", "--standby"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_until(
        lambda: "taking over when it stops" in slog.read_text(errors="replace"),
        180,
        "the standby to be waiting",
    )
    time.sleep(2.0)  # as before the cold restart: a few engine passes persist their changes
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    started = time.monotonic()  # from the death: nothing has to notice it and start a process
    mark = h.mark()
    h.press(probe.device_id)  # sent while nobody holds the journal
    result["standby_ready_s"] = wait_ready(standby, url, slog, 180)
    result["standby_ready_cpu_s"] = cpu_seconds(standby.pid)  # includes its own start-up
    offer = h.wait(lambda g: g.body.get("type") == "offer", 120, mark)
    result["standby_first_offer_s"] = None if offer is None else offer.at - started
    return standby


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--open-alarms", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=72.0)
    ap.add_argument("--keep-log", type=Path, help="copy the gateway's log here at the end")
    ap.add_argument(
        "--profile", type=Path, help="run the restarted gateway under py-spy, stacks to this file"
    )
    ap.add_argument("--no-standby", action="store_true", help="skip the takeover by a warm standby")
    args = ap.parse_args()
    flats = args.open_alarms + 10
    raw = scheme_dict(0, flats, 40)
    for d in raw["devices"]:
        if d["type"] == "hub":
            d["heartbeat_interval_s"] = HUB_HEARTBEAT_S
    scheme = Scheme.model_validate(raw)
    result: dict[str, Any] = {"open_alarms_target": args.open_alarms, "journal_hours": args.hours}
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp, fresh_database() as dsn:
        work = Path(tmp)
        scheme_file = work / "estate.yaml"
        scheme_file.write_text(json.dumps(raw))
        result["journal_rows"] = prefill(work / "journal.sqlite3", scheme, args.hours)
        with PrivateBroker(work / "broker") as broker:
            tag = uuid.uuid4().hex[:8]
            http = free_port()
            url = f"http://127.0.0.1:{http}"
            anchor = time.time()
            env = gateway_env(
                work,
                broker.port,
                dsn,
                http,
                tag,
                schemes=[scheme_file],
                TELECARE_CLOCK__SPEED=str(SPEED),
                TELECARE_CLOCK__START=NIGHT.isoformat(),
                TELECARE_CLOCK__ANCHOR=repr(anchor),
                TELECARE_ENGINE__TICK_S="50",
                TELECARE_JOURNAL__DEDUPE_RETENTION_H=str(int(args.hours) + 24),
            )
            log = work / "gateway.log"
            proc = spawn_gateway(env, log)
            layout = TopicLayout(f"b{tag}", f"bz{tag}")
            carers = scheme.carers[:20]
            on_shift = {c.id: scheme.residents[k * 37 % flats].flat for k, c in enumerate(carers)}
            h = Handsets(broker.port, layout, scheme.id, anchor, on_shift)
            try:
                result["first_start_ready_s"] = wait_ready(proc, url, log, 180)
                key = "telecare_shipper_lag_events"
                wait_until(
                    lambda: sum(v for k, v in metrics(url).items() if k.startswith(key)) == 0,
                    300,
                    "the prefilled journal to ship",
                )
                h.log_in()
                pendants = [d for d in scheme.devices if d.type.value == "pendant"]
                for d in pendants[: args.open_alarms]:
                    h.press(d.device_id)
                wait_until(lambda: open_alarms(url) >= args.open_alarms, 300, "the alarms to open")
                result["open_alarms_at_kill"] = open_alarms(url)
                time.sleep(2.0)  # a few engine passes persist what they changed
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                probe = pendants[args.open_alarms]
                mark = h.mark()
                # Sent while the gateway is down: the broker holds it for the gateway's session.
                h.press(probe.device_id)
                time.sleep(0.5)
                # What starting Python and importing the gateway costs alone on this machine
                # now, so the rest of "ready" is the gateway's own recovery work.
                began = time.monotonic()
                subprocess.run(
                    [sys.executable, "-c", "import gateway.cli, gateway.service"],
                    cwd=REPO,
                    check=True,
                )
                result["import_s"] = time.monotonic() - began
                started = time.monotonic()
                with log.open("a") as out:  # so the log's own stamps can be read from here
                    out.write(f"{datetime.now(UTC).isoformat()} bench: restart\n")
                if args.profile is None:
                    proc = spawn_gateway(env, log)
                else:
                    proc = spawn_profiled(env, log, args.profile)
                result["ready_s"] = wait_ready(proc, url, log, 180)
                # CPU the restarted process used until ready: what a busy machine (load from
                # other processes) does not inflate the way it does wall time.
                result["ready_cpu_s"] = None if args.profile else cpu_seconds(proc.pid)
                # The first offer any handset gets from the restarted gateway: with every carer
                # holding an offer already, the new press itself waits its turn in the queue.
                offer = h.wait(lambda g: g.body.get("type") == "offer", 120, mark)
                result["first_offer_s"] = None if offer is None else offer.at - started
                if not args.no_standby:
                    proc = takeover(proc, env, work, url, h, pendants[args.open_alarms + 1], result)
            finally:
                h.close()
                if args.profile is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT only
                    proc.wait(60)
                stop(proc)
                if args.keep_log is not None:
                    args.keep_log.write_bytes(log.read_bytes())
    print()
    print(
        table(
            [
                "open alarms",
                "journal rows",
                "python + imports s",
                "ready s",
                "CPU s to ready",
                "first offer s",
                "standby: ready s",
                "standby: first offer s",
            ],
            [
                [
                    round(result["open_alarms_at_kill"]),
                    result["journal_rows"],
                    result["import_s"],
                    result["ready_s"],
                    result["ready_cpu_s"] if result["ready_cpu_s"] is not None else "-",
                    result["first_offer_s"] if result["first_offer_s"] is not None else "none",
                    result.get("standby_ready_s", "-"),
                    result.get("standby_first_offer_s") or "-",
                ]
            ],
        )
    )
    path = write_result("recovery", result)
    print(f"\nwritten {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
