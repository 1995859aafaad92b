"""Cores: how far ingest can spread over this host's cores, measured before it is built.

Issue 12, part 3 asks how one host uses its cores. The ingest design that would spread is
several worker processes on an MQTT shared subscription (``$share/<group>/<filter>``), each
decoding, journaling and receipting its share. Before building it, this measures its ceiling
with the bare-aiomqtt limit consumer (JSON parse only, nothing else): N QoS 1 events queued
for persistent sessions, then drained by

* one consumer on a plain subscription (the present shape), and
* K consumers, each its own process, on one shared subscription (round robin in Mosquitto),

counting every event id across the consumers (zero loss) and timing from the first message to
the last, with the CPU each consumer and the broker used. If the broker or the core count is
the ceiling, more consumers do not add rate; that is what the run shows. Run:
    .venv/bin/python -m benchmarks.cores [--events 100000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, SCHEME, cpu_seconds, peak_rss_mib, table, write_result
from benchmarks.drain_clients import resumed_session
from benchmarks.ingest_drain import fill, make_session
from devices.scheme import load_scheme
from devices.topics import TopicLayout
from simulator.publisher import event_stream
from tests.faults.private_broker import PrivateBroker

IDLE_S = 3.0  # a consumer that hears nothing for this long after its first message is done


async def _consume(port: int, client_id: str, topic: str, limit_s: float) -> dict[str, Any]:
    ids: list[str] = []
    first = last = 0.0
    started = time.monotonic()
    async with resumed_session(port, client_id) as client:
        await client.subscribe(topic, qos=1)
        it = client.messages.__aiter__()
        while time.monotonic() - started < limit_s:
            try:
                async with asyncio.timeout(IDLE_S if ids else limit_s):
                    msg = await it.__anext__()
            except TimeoutError:
                break
            now = time.monotonic()
            if not ids:
                first = now
            last = now
            ids.append(json.loads(msg.payload)["event_id"])
    return {"ids": ids, "first": first, "last": last}


def consumer_main(port: int, client_id: str, topic: str, limit_s: float, out: Path) -> None:
    """One consumer process: drain, then write what it read (ids, times, its own CPU)."""
    import os

    got = asyncio.run(_consume(port, client_id, topic, limit_s))
    got["cpu_s"] = cpu_seconds(os.getpid())
    got["peak_rss_mib"] = peak_rss_mib()
    out.write_text(json.dumps(got))


def drain(
    port: int, broker_pid: int, client_ids: list[str], topic: str, work: Path, limit_s: float
) -> dict[str, Any]:
    """Start one process per client id at once; wait for all; merge their counts."""
    broker_cpu = cpu_seconds(broker_pid)
    procs = []
    outs = []
    for cid in client_ids:
        out = work / f"{cid}.json"
        outs.append(out)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.cores",
                    "consume",
                    "--port",
                    str(port),
                    "--client-id",
                    cid,
                    "--topic",
                    topic,
                    "--limit-s",
                    str(limit_s),
                    "--out",
                    str(out),
                ],
                cwd=REPO,
            )
        )
    for p in procs:
        p.wait(timeout=limit_s + 60)
        if p.returncode != 0:
            raise RuntimeError(f"a consumer failed ({p.returncode})")
    broker_cpu = cpu_seconds(broker_pid) - broker_cpu
    parts = [json.loads(o.read_text()) for o in outs]
    ids = [i for p in parts for i in p["ids"]]
    first = min(p["first"] for p in parts if p["ids"])
    last = max(p["last"] for p in parts if p["ids"])
    return {
        "consumers": len(parts),
        "received": len(ids),
        "distinct": len(set(ids)),
        "per_consumer": [len(p["ids"]) for p in parts],
        "first_to_last_s": last - first,
        "rate": (len(ids) - 1) / (last - first) if last > first else 0.0,
        "consumer_cpu_s": [round(p["cpu_s"], 2) for p in parts],
        "consumer_peak_rss_mib": [round(p["peak_rss_mib"], 1) for p in parts],
        "broker_cpu_s": round(broker_cpu, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2, help="consumers on the shared subscription")
    ap.add_argument("--limit-s", type=float, default=300, help="bound on each drain")
    args = ap.parse_args()
    n = args.events
    scheme = load_scheme(SCHEME)
    tag = uuid.uuid4().hex[:8]
    layout = TopicLayout(f"bench-cores-{tag}")
    events = f"{layout.root}/+/devices/+/events"
    shared = f"$share/cores-{tag}/{events}"
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cores-") as tmp:
        work = Path(tmp)
        with PrivateBroker(work / "broker") as broker:
            assert broker.proc is not None
            one = [f"cores-one-{tag}"]
            many = [f"cores-w{i}-{tag}" for i in range(args.workers)]
            make_session(broker.port, one[0], events)
            for cid in many:
                make_session(broker.port, cid, shared)
            payloads = [(o.topic, o.payload()) for o in event_stream(scheme, n, 11, layout)]
            fill_s = fill(broker.port, payloads)
            print(f"{n:,} events queued for each shape ({fill_s:.0f} s to fill)", flush=True)
            pid = broker.proc.pid
            rows["one consumer"] = drain(broker.port, pid, one, events, work, args.limit_s)
            print(f"  one consumer: {rows['one consumer']['rate']:,.0f}/s", flush=True)
            name = f"{args.workers} on a shared subscription"
            rows[name] = drain(broker.port, pid, many, shared, work, args.limit_s)
            print(f"  {name}: {rows[name]['rate']:,.0f}/s", flush=True)
    base = rows["one consumer"]["rate"]
    out = []
    for name, r in rows.items():
        r["vs_one"] = r["rate"] / base if base else None
        r["zero_loss"] = r["distinct"] == n
        out.append(
            [
                name,
                round(r["rate"]),
                f"{r['vs_one']:.2f}x" if base else "-",
                f"{r['distinct']:,}/{n:,}",
                " + ".join(f"{c:,}" for c in r["per_consumer"]),
                " + ".join(str(c) for c in r["consumer_cpu_s"]),
                r["broker_cpu_s"],
            ]
        )
    print()
    print(
        table(
            ["shape", "events/s", "vs one", "distinct", "per consumer", "CPU s", "broker CPU s"],
            out,
        )
    )
    path = write_result("cores", {"events": n, "workers": args.workers, "shapes": rows})
    print(f"\nwritten {path.relative_to(REPO)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "consume":
        ap = argparse.ArgumentParser()
        ap.add_argument("consume")
        ap.add_argument("--port", type=int, required=True)
        ap.add_argument("--client-id", required=True)
        ap.add_argument("--topic", required=True)
        ap.add_argument("--limit-s", type=float, required=True)
        ap.add_argument("--out", type=Path, required=True)
        a = ap.parse_args()
        consumer_main(a.port, a.client_id, a.topic, a.limit_s, a.out)
    else:
        main()
