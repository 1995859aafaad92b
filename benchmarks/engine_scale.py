"""Engine scale: the pure core's step times as the estate grows.

50 generated schemes (``benchmarks.estate``), 2,000 carers all logged in, and 1,000, 10,000 or
100,000 devices. Open alarms are raised by pendant presses on distinct residents, as many as
``--open-alarms`` (default 10,000) or as fit in ``--alarm-budget`` seconds, whichever comes
first; the count reached is reported. Then, timed one ``Core.step`` at a time: device
heartbeats, pendant presses (routing an offer), carer presence heartbeats, and supervision
ticks; and the process's RSS. Each size runs in its own process so its RSS is its own.

Each step is timed twice: wall time (``perf_counter``: what a waiting alarm sees, including any
time the machine gave to other processes) and the thread's CPU time (``thread_time``: the cost
of the step itself, which a shared machine does not inflate). ``--ref REV`` also runs the same
measurement on the engine as it was at a git revision (exported with ``git archive``), one
size after the other in the same run: before and after side by side.

This times ``Core.step`` only; the shell's persistence of each step's changes comes on top.
Run: .venv/bin/python -m benchmarks.engine_scale [--devices 1000,10000,100000] [--ref main]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, rss_mib, summary_ms, table, write_result

NIGHT = datetime(2026, 1, 14, 2, 0, tzinfo=UTC)


def measure(devices: int, open_target: int, budget_s: float, samples: int) -> dict[str, Any]:
    from benchmarks.estate import estate
    from devices.registry import DeviceType
    from gateway.engine.core import Core
    from gateway.engine.model import EventIn, Position, PresenceIn, TickIn

    built = time.perf_counter()
    schemes = estate(devices)
    core = Core({s.id: s for s in schemes})
    now = NIGHT
    state = core.initial_state(now)
    build_s = time.perf_counter() - built
    rng = random.Random(12)
    login_started = time.perf_counter()
    for s in schemes:
        for i, c in enumerate(s.carers):
            flat = s.residents[(i * 7) % len(s.residents)].flat
            state, _ = core.step(state, PresenceIn(s.id, c.id, "login", Position(flat=flat)), now)
    login_s = time.perf_counter() - login_started
    hubs = [(s.id, d.device_id) for s in schemes for d in s.devices if d.type is DeviceType.HUB]
    pendants = [
        (s.id, d.device_id) for s in schemes for d in s.devices if d.type is DeviceType.PENDANT
    ]
    rng.shuffle(pendants)
    seq = 0

    def event(sid: str, dev: str, kind: str) -> EventIn:
        nonlocal seq
        seq += 1
        return EventIn(sid, str(uuid.UUID(int=seq)), dev, kind, now, now)

    # Open alarms: presses on distinct residents, within the budget.
    opened = 0
    started = time.perf_counter()
    while opened < min(open_target, len(pendants) - samples):
        if time.perf_counter() - started > budget_s:
            break
        sid, dev = pendants[opened]
        now += timedelta(milliseconds=5)
        state, _ = core.step(state, event(sid, dev, "pendant_press"), now)
        opened += 1
    open_s = time.perf_counter() - started

    cpu: dict[str, list[float]] = {}

    def timed(name: str, make: Any, count: int, cap_s: float) -> list[float]:
        nonlocal state, now
        out: list[float] = []
        used = cpu[name] = []
        begun = time.perf_counter()
        for i in range(count):
            if time.perf_counter() - begun > cap_s:
                break
            inp = make(i)
            now += timedelta(milliseconds=5)
            c = time.thread_time()
            t = time.perf_counter()
            state, _ = core.step(state, inp, now)
            out.append(time.perf_counter() - t)
            used.append(time.thread_time() - c)
        return out

    beat = timed(
        "heartbeat", lambda i: event(*hubs[rng.randrange(len(hubs))], "heartbeat"), samples, 20
    )
    press = timed(
        "press",
        lambda i: event(*pendants[opened + i], "pendant_press"),
        max(10, samples // 10),
        20,
    )
    carers = [(s.id, c.id) for s in schemes for c in s.carers]
    presence = timed(
        "presence",
        lambda i: PresenceIn(*carers[rng.randrange(len(carers))], "heartbeat"),
        samples,
        20,
    )
    tick = timed("tick", lambda i: TickIn(), 10, 30)
    open_now = sum(1 for a in state.alarms.values() if a.is_open)
    return {
        "devices": devices,
        "schemes": len(schemes),
        "carers": len(carers),
        "open_alarms": open_now,
        "open_alarms_target": open_target,
        "build_s": build_s,
        "login_all_carers_s": login_s,
        "raise_open_alarms_s": open_s,
        "heartbeat": summary_ms(beat),
        "press": summary_ms(press),
        "presence": summary_ms(presence),
        "tick": summary_ms(tick),
        "cpu": {k: summary_ms(v) for k, v in cpu.items()},
        "rss_mib": rss_mib(),
    }


def export(rev: str, into: Path) -> Path:
    """The tree at ``rev`` (``git archive``), to run the engine as it was."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_size(n: int, args: argparse.Namespace, tree: Path | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.engine_scale", "--one", str(n)]
    cmd += ["--open-alarms", str(args.open_alarms), "--alarm-budget", str(args.alarm_budget)]
    cmd += ["--samples", str(args.samples)]
    if tree is not None:
        cmd += ["--tree", str(tree)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    r: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", default="1000,10000,100000")
    ap.add_argument("--open-alarms", type=int, default=10_000)
    ap.add_argument("--alarm-budget", type=float, default=45.0, help="seconds to raise alarms")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--ref", help="also the engine as it was at this git revision")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--tree", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        if args.tree:
            # The engine (and its schemes) from the exported tree; this file's measurement.
            sys.path.insert(0, args.tree)
        r = measure(args.one, args.open_alarms, args.alarm_budget, args.samples)
        print(json.dumps(r), flush=True)
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        tree = export(args.ref, Path(tmp) / "ref") if args.ref else None
        for n in (int(x) for x in args.devices.split(",")):
            for label, where in [("this", None)] + ([(args.ref, tree)] if args.ref else []):
                r = run_size(n, args, where)
                r["engine"] = label
                results.append(r)
                print(
                    f"  {label}: {n:,} devices, {r['open_alarms']:,} open alarms: heartbeat p99"
                    f" {r['heartbeat']['p99_ms']:.3f} ms, tick p99 {r['tick']['p99_ms']:.1f} ms",
                    flush=True,
                )
    rows = []
    for r in results:
        cpu = r["cpu"]
        rows.append(
            [
                r["engine"],
                f"{r['devices']:,}",
                r["open_alarms"],
                r["heartbeat"]["p50_ms"] * 1000,
                r["heartbeat"]["p99_ms"] * 1000,
                cpu["heartbeat"]["p99_ms"] * 1000,
                r["press"]["p50_ms"],
                r["press"]["p99_ms"],
                cpu["press"]["p99_ms"],
                r["presence"]["p50_ms"] * 1000,
                r["presence"]["p99_ms"] * 1000,
                cpu["presence"]["p99_ms"] * 1000,
                r["tick"]["p50_ms"],
                r["tick"]["p99_ms"],
                cpu["tick"]["p99_ms"],
                r["rss_mib"],
            ]
        )
    print()
    print(
        table(
            [
                "engine",
                "devices",
                "open alarms",
                "beat p50 µs",
                "beat p99 µs",
                "(cpu p99)",
                "press p50 ms",
                "press p99 ms",
                "(cpu p99)",
                "presence p50 µs",
                "presence p99 µs",
                "(cpu p99)",
                "tick p50 ms",
                "tick p99 ms",
                "(cpu p99)",
                "RSS MiB",
            ],
            rows,
        )
    )
    path = write_result("engine_scale", {"ref": args.ref, "sizes": results})
    print(f"\nwritten {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
