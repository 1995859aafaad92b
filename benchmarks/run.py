"""``make bench``: every benchmark in turn, each in its own process with its own services,
each printing its table and writing ``bench/results/<name>.json``. Bounded: each benchmark
limits its own counts and time, and this runner stops one that overruns ``--limit`` seconds.

    .venv/bin/python -m benchmarks.run [--only ingest_drain,alarm_latency] [--quick]

``--quick`` runs smaller counts (a smoke run, minutes less); figures quoted in
docs/performance.md come from the full run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time

from benchmarks.common import REPO

FULL: dict[str, list[str]] = {
    "ingest_drain": ["--events", "100000"],
    "alarm_latency": ["--rates", "0,500,2000,5000"],
    "engine_scale": ["--devices", "1000,10000,100000", "--alarm-budget", "30", "--samples", "100"],
    "recovery": ["--open-alarms", "1000", "--hours", "72"],
    "cores": ["--events", "100000", "--workers", "2"],
}
QUICK: dict[str, list[str]] = {
    "ingest_drain": ["--events", "10000"],
    "alarm_latency": ["--rates", "0,500", "--presses", "10", "--timer-probes", "1"],
    "engine_scale": ["--devices", "1000,10000", "--alarm-budget", "10"],
    "recovery": ["--open-alarms", "100", "--hours", "6"],
    "cores": ["--events", "10000", "--workers", "2"],
}


def run_one(cmd: list[str], limit: float) -> int | None:
    """Run one benchmark in a process group of its own; its exit code, or None if it overran
    ``limit`` and was stopped. Stopping is SIGINT first, so the benchmark's own clean-up stops
    the broker and gateway it started, then SIGKILL for whatever is still left in the group."""
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True)
    try:
        return proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        raise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated benchmark names")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--limit", type=float, default=900.0, help="seconds per benchmark at most")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    names = [n for n in args.only.split(",") if n] or list(plan)
    started = time.monotonic()
    failed = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        t = time.monotonic()
        rc = run_one([sys.executable, "-m", f"benchmarks.{name}", *plan[name]], args.limit)
        if rc is None:
            print(f"{name}: stopped after {args.limit:.0f} s", flush=True)
        if rc != 0:
            failed.append(name)
        print(f"({name}: {time.monotonic() - t:.0f} s)", flush=True)
    print(f"\nmake bench: {time.monotonic() - started:.0f} s; results in bench/results/")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
