"""Ingest drain: N device events queued in the broker, drained by the limit, the naive
baseline and the gateway, in one run, each checked for zero loss by a count.

A private Mosquitto (the shipped development config, its own port) holds N QoS 1 events for
three persistent sessions while nobody reads; then each consumer drains its own copy in turn:

* ``limit``: bare aiomqtt, JSON parse only (``benchmarks/drain_clients.py aiomqtt``);
* ``baseline``: paho, one autocommitted INSERT per message into PostgreSQL (``... paho``);
* ``gateway``: ``telecare gateway run`` as shipped: decode, journal group commit, PUBACK after
  the commit, receipts, fences, the shipper to TimescaleDB and the engine all running.

``--ref REV`` adds the gateway as it was at a git revision (exported with ``git archive``), on
its own copy of the events under another topic root: a before/after comparison in one run.

Rate is events over the time from the first to the last message (the gateway: its own journal
stamps, first to last ``received_at``); peak RSS is each process's VmHWM. Run:
    .venv/bin/python -m benchmarks.ingest_drain [--events 100000] [--ref main]
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from benchmarks.common import (
    REPO,
    SCHEME,
    cpu_seconds,
    fresh_database,
    gateway_env,
    metrics,
    peak_rss_mib,
    spawn_gateway,
    stop,
    table,
    tail,
    wait_ready,
    write_result,
)
from devices.scheme import load_scheme
from devices.topics import TopicLayout
from simulator.gateway_proc import free_port
from simulator.publisher import Publisher, event_stream
from tests.faults.private_broker import PrivateBroker


def make_session(port: int, client_id: str, topic: str) -> None:
    """A persistent session subscribed to ``topic``, then away: the broker queues for it."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    subscribed = threading.Event()
    c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    if not subscribed.wait(20):
        raise RuntimeError("no SUBACK")
    c.disconnect()
    c.loop_stop()


def fill(port: int, payloads: list[tuple[str, bytes]]) -> float:
    """Publish every event at QoS 1 and wait for the broker's PUBACKs; seconds taken."""
    started = time.monotonic()
    pub = Publisher("127.0.0.1", port)
    for i, (topic, payload) in enumerate(payloads):
        if i and i % 5000 == 0:
            pub.wait_acked(i, timeout=300)
        pub.publish(topic, payload)
    if not pub.wait_acked(len(payloads), timeout=900):
        raise RuntimeError("the broker did not take the backlog")
    pub.close()
    return time.monotonic() - started


def run_client(
    kind: str, port: int, client_id: str, topic: str, n: int, dsn: str
) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.drain_clients",
            kind,
            "--port",
            str(port),
            "--client-id",
            client_id,
            "--topic",
            topic,
            "--n",
            str(n),
            "--dsn",
            dsn,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} consumer failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        result.update(json.loads(line))
    result["loaded"] = result.get("rows_in_database", result["distinct"])
    result["rate"] = (n - 1) / result["first_to_last_s"] if result["first_to_last_s"] else 0.0
    return result


class GatewayRun:
    """One gateway (this tree, or an exported revision) on its own journal and session."""

    def __init__(self, work: Path, port: int, dsn: str, tag: str, src: Path = REPO) -> None:
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        self.http = free_port()
        self.url = f"http://127.0.0.1:{self.http}"
        self.src = src
        self.tag = tag
        self.env = gateway_env(work, port, dsn, self.http, tag)
        if src != REPO:
            self.env["PYTHONPATH"] = str(src)
        self.log = work / "gateway.log"
        self.layout = TopicLayout(f"b{tag}", f"bz{tag}")

    profile: Path | None = None  # py-spy's collapsed stacks of the drain, when asked for

    def spawn(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "gateway.cli", "gateway", "run"]
        if self.profile is not None:
            spy = Path(sys.executable).with_name("py-spy")
            cmd = [str(spy), "record", "-r", "250", "--threads", "--format", "raw", "-o"]
            cmd += [str(self.profile), "--", sys.executable, "-m", "gateway.cli", "gateway", "run"]
        with self.log.open("ab") as out:
            return subprocess.Popen(
                cmd,
                env=self.env,
                cwd=self.src,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def register(self) -> None:
        """First start: the broker learns the gateway's session; then it goes away."""
        proc = self.spawn() if self.src != REPO else spawn_gateway(self.env, self.log)
        try:
            wait_ready(proc, self.url, self.log, 90)
        finally:
            stop(proc)

    def journal_count(self) -> tuple[int, float]:
        """(events in the journal, seconds from the first to the last one received)."""
        conn = sqlite3.connect(f"file:{self.work / 'journal.sqlite3'}?mode=ro", uri=True)
        try:
            n, first, last = conn.execute(
                "SELECT count(*), min(received_at), max(received_at) FROM records"
                " WHERE record_type = 'event'"
            ).fetchone()
        finally:
            conn.close()
        if not n:
            return 0, 0.0
        span = datetime.fromisoformat(last) - datetime.fromisoformat(first)
        return int(n), span.total_seconds()

    def drain(self, n: int, timeout: float, profile: Path | None = None) -> dict[str, Any]:
        started = time.monotonic()
        self.profile = profile
        proc = self.spawn()
        try:
            accepted = 0.0
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"gateway exited: {tail(self.log)}")
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"gateway drained {accepted:.0f}/{n} in {timeout}s")
                time.sleep(1.0)
                try:
                    m = metrics(self.url)
                except Exception:  # a busy gateway may answer late: keep waiting
                    continue
                accepted = m.get("telecare_ingest_messages_total{result=accepted}", 0.0)
                if accepted >= n:
                    break
            wall = time.monotonic() - started
            count, span = self.journal_count()
            return {
                "loaded": count,
                "first_to_last_s": span,
                "rate": (n - 1) / span if span else 0.0,
                "wall_s": wall,
                "peak_rss_mib": peak_rss_mib(proc.pid),
                "cpu_s": cpu_seconds(proc.pid),
                "in_flight_peak": m.get("telecare_ingest_in_flight_peak", float("nan")),
                "journal_commits": m.get("telecare_journal_commit_seconds_count", float("nan")),
                "commit_s_mean": m.get("telecare_journal_commit_seconds_sum", 0.0)
                / max(1.0, m.get("telecare_journal_commit_seconds_count", 1.0)),
            }
        finally:
            if profile is not None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT only
                proc.wait(60)
            stop(proc)


def export(rev: str, into: Path) -> Path:
    """The tree at ``rev`` (``git archive``), to run the gateway as it was."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--ref", action="append", default=[], help="also a gateway at this git rev")
    ap.add_argument("--skip-baselines", action="store_true", help="gateways only")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--profile", type=Path, help="py-spy the gateway's drain into this file")
    args = ap.parse_args()
    n = args.events
    scheme = load_scheme(SCHEME)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp, fresh_database() as dsn:
        work = Path(tmp)
        with PrivateBroker(work / "broker") as broker:
            tag = uuid.uuid4().hex[:8]
            gateways = {"gateway": GatewayRun(work / "gw", broker.port, dsn, tag)}
            for rev in args.ref:
                src = export(rev, work / f"src-{len(gateways)}")
                t = uuid.uuid4().hex[:8]
                gateways[f"gateway@{rev}"] = GatewayRun(work / f"gw-{t}", broker.port, dsn, t, src)
            for g in gateways.values():
                g.register()
            main_layout = gateways["gateway"].layout
            events_filter = f"{main_layout.root}/+/devices/+/events"
            ids = {"limit": f"drain-aiomqtt-{tag}", "baseline": f"drain-paho-{tag}"}
            if not args.skip_baselines:
                for cid in ids.values():
                    make_session(broker.port, cid, events_filter)
            fill_s = 0.0
            for g in gateways.values():
                # The same events (same ids) under each gateway's own root: one copy each.
                payloads = [(o.topic, o.payload()) for o in event_stream(scheme, n, 7, g.layout)]
                fill_s += fill(broker.port, payloads)
            print(f"{n:,} events queued per consumer ({fill_s:.0f} s to fill)", flush=True)
            if not args.skip_baselines:
                rows["limit"] = run_client(
                    "aiomqtt", broker.port, ids["limit"], events_filter, n, dsn
                )
                print(f"  limit drained: {rows['limit']['rate']:,.0f}/s", flush=True)
                rows["baseline"] = run_client(
                    "paho", broker.port, ids["baseline"], events_filter, n, dsn
                )
                print(f"  baseline drained: {rows['baseline']['rate']:,.0f}/s", flush=True)
            for name, g in gateways.items():
                prof = args.profile if name == "gateway" else None
                rows[name] = g.drain(n, args.timeout, prof.resolve() if prof else None)
                print(f"  {name} drained: {rows[name]['rate']:,.0f}/s", flush=True)
    limit = rows.get("limit", {}).get("rate")
    base = rows.get("baseline", {}).get("rate")
    out_rows = []
    for name, r in rows.items():
        out_rows.append(
            [
                name,
                round(r["rate"]),
                f"{r['rate'] / limit:.2f}x" if limit else "-",
                f"{r['rate'] / base:.2f}x" if base else "-",
                f"{r['loaded']:,}/{n:,}",
                r["peak_rss_mib"],
                r["cpu_s"],
            ]
        )
        r["vs_limit"] = r["rate"] / limit if limit else None
        r["vs_baseline"] = r["rate"] / base if base else None
        r["zero_loss"] = r["loaded"] == n
    print()
    print(
        table(
            ["consumer", "events/s", "vs limit", "vs baseline", "loaded", "peak RSS MiB", "CPU s"],
            out_rows,
        )
    )
    path = write_result("ingest_drain", {"events": n, "fill_s": fill_s, "consumers": rows})
    print(f"\nwritten {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
