"""Peak memory of a gateway draining a large backlog, with the in-flight window bounded or not.

A private Mosquitto (shipped config, own port) queues N device events for a gateway that is
away; then a gateway starts and drains them into a fresh database on the development
PostgreSQL. Its peak RSS (VmHWM) and the most messages it ever held unacknowledged are read when
the last event is journaled. Runs twice in the same run: with the shipped bounds (Receive
Maximum 1,000, ingest queue 2,000) and with the window opened to 65,535 and the queue to a
million, which is what nothing-bounded looks like. Prints figures; asserts nothing. Run:
    .venv/bin/python benchmarks/backlog_memory.py [--events 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devices.scheme import load_scheme
from devices.topics import TopicLayout
from gateway.config import Settings
from simulator.gateway_proc import free_port, start_gateway
from simulator.publisher import Publisher, event_stream
from tests.faults.private_broker import PrivateBroker

REPO = Path(__file__).resolve().parents[1]
SCHEME = REPO / "examples" / "hazelhurst-court.yaml"


def _metrics(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text):
        for s in family.samples:
            if not s.labels or s.labels.get("result") == "accepted":
                out[s.name] = s.value
    return out


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(n: int, bounded: bool, admin_dsn: str) -> tuple[float, float, float]:
    """(peak RSS MiB, peak in flight, seconds to drain)."""
    tag = uuid.uuid4().hex[:8]
    db = f"telecare_bench_{tag}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    dsn = urlunsplit(urlsplit(admin_dsn)._replace(path=f"/{db}"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    try:
        with tempfile.TemporaryDirectory(prefix="backlog-bench-") as tmp:
            work = Path(tmp)
            with PrivateBroker(work / "broker") as broker:
                port = free_port()
                env = {k: v for k, v in os.environ.items() if not k.startswith("TELECARE_")}
                env.update(
                    {
                        "TELECARE_ENVIRONMENT": "test",
                        "TELECARE_GATEWAY_ID": f"bench-{tag}",
                        "TELECARE_SCHEMES": f'["{SCHEME}"]',
                        "TELECARE_MQTT__PORT": str(broker.port),
                        "TELECARE_MQTT__CLIENT_ID": f"bench-gw-{tag}",
                        "TELECARE_MQTT__TOPIC_ROOT": f"b{tag}",
                        "TELECARE_MQTT__ZIGBEE_ROOT": f"bz{tag}",
                        "TELECARE_DB__DSN": dsn,
                        "TELECARE_JOURNAL__PATH": str(work / "journal.sqlite3"),
                        "TELECARE_HTTP__PORT": str(port),
                    }
                )
                if not bounded:
                    env["TELECARE_INGEST__RECEIVE_MAXIMUM"] = "65535"
                    env["TELECARE_INGEST__QUEUE_MAX"] = "1000000"
                url = f"http://127.0.0.1:{port}"
                log = work / "gateway.log"
                # First start: the broker learns the gateway's session; then it is away.
                proc = start_gateway(env, log, url, 60)
                proc.terminate()
                proc.wait(30)
                layout = TopicLayout(f"b{tag}", f"bz{tag}")
                pub = Publisher("127.0.0.1", broker.port)
                for i, out in enumerate(event_stream(load_scheme(SCHEME), n, 3, layout)):
                    if i and i % 5000 == 0:  # keep the publisher's own queue short
                        pub.wait_acked(i, timeout=300)
                    pub.publish(out.topic, out.payload())
                if not pub.wait_acked(n, timeout=900):
                    raise RuntimeError("broker did not take the backlog")
                pub.close()
                started = time.monotonic()
                # Not ``start_gateway``: without the bounds a swamped gateway is not ready (or
                # even answering HTTP) for a long while; poll its metrics instead.
                with log.open("ab") as out:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "gateway.cli", "gateway", "run"],
                        env=env,
                        cwd=REPO,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                try:
                    m: dict[str, float] = {}
                    while m.get("telecare_ingest_messages_total", 0) < n:
                        if proc.poll() is not None or time.monotonic() - started > 1200:
                            raise RuntimeError(f"gateway gave up or too slow; log: {log}")
                        time.sleep(0.5)
                        try:
                            m = _metrics(url)
                        except httpx.HTTPError:
                            continue  # a swamped gateway answers late; that is a finding too
                    took = time.monotonic() - started
                    return (
                        _peak_rss_mib(proc.pid),
                        m.get("telecare_ingest_in_flight_peak", float("nan")),
                        took,
                    )
                finally:
                    proc.terminate()
                    proc.wait(30)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--case", choices=("both", "bounded", "open"), default="both")
    args = ap.parse_args()
    admin = Settings().db.dsn.get_secret_value()
    print(f"draining a backlog of {args.events} events")
    cases = {"both": (True, False), "bounded": (True,), "open": (False,)}[args.case]
    for bounded in cases:
        rss, peak, took = run(args.events, bounded, admin)
        label = "bounded (shipped)" if bounded else "window 65,535, queue 1e6"
        print(
            f"{label:26} peak RSS {rss:6.0f} MiB, most unacknowledged {peak:6.0f},"
            f" drained in {took:5.0f} s"
        )


if __name__ == "__main__":
    main()
