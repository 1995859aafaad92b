"""What every benchmark shares: a fresh database, a gateway's environment, process figures
(peak RSS, CPU time), percentiles, a printed table and the JSON written to ``bench/results/``.

Benchmarks start their own services on loopback (a private Mosquitto per run, a fresh database
on the development PostgreSQL), bound themselves in count and time, and assert nothing: the
machine is shared and noisy, so figures are compared as ratios within one run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SCHEME = REPO / "examples" / "hazelhurst-court.yaml"
ADMIN_DSN = os.environ.get(
    "TELECARE_BENCH_DSN", "postgresql://telecare:telecare@127.0.0.1:54330/telecare"
)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of durations given in seconds, in milliseconds."""
    return {
        "n": len(values_s),
        "p50_ms": percentile(values_s, 50) * 1000,
        "p99_ms": percentile(values_s, 99) * 1000,
        "max_ms": (max(values_s) * 1000) if values_s else float("nan"),
    }


def peak_rss_mib(pid: int | None = None) -> float:
    """VmHWM of a process (default: this one), in MiB."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mosq = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=5)
        broker = (mosq.stdout or mosq.stderr).splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        broker = "unknown"
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "broker": broker,
        "load_avg_at_start": os.getloadavg(),
    }


def write_result(name: str, body: dict[str, Any]) -> Path:
    """``bench/results/<name>.json``: the figures, when, on what, and the command."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    doc = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        **body,
    }
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return out


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table, numbers right-aligned."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            if abs(v) < 10:
                return f"{v:,.2f}"
            return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r, raw in zip(cells, rows, strict=True):
        lines.append(
            "  ".join(
                c.rjust(w) if isinstance(v, int | float) else c.ljust(w)
                for c, w, v in zip(r, widths, raw, strict=True)
            )
        )
    return "\n".join(lines)


@contextmanager
def fresh_database(prefix: str = "telecare_bench") -> Iterator[str]:
    """A new database with TimescaleDB on the development server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(ADMIN_DSN)._replace(path=f"/{name}"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    try:
        yield dsn
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def gateway_env(
    work: Path,
    broker_port: int,
    dsn: str,
    http_port: int,
    tag: str,
    schemes: Sequence[Path] = (SCHEME,),
    **extra: str,
) -> dict[str, str]:
    """Environment for ``python -m gateway.cli gateway run`` on its own roots and files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELECARE_")}
    files = ", ".join(f'"{p}"' for p in schemes)
    env.update(
        {
            "TELECARE_ENVIRONMENT": "test",
            "TELECARE_GATEWAY_ID": f"bench-{tag}",
            "TELECARE_SCHEMES": f"[{files}]",
            "TELECARE_MQTT__PORT": str(broker_port),
            "TELECARE_MQTT__CLIENT_ID": f"bench-gw-{tag}",
            "TELECARE_MQTT__TOPIC_ROOT": f"b{tag}",
            "TELECARE_MQTT__ZIGBEE_ROOT": f"bz{tag}",
            "TELECARE_MQTT__RECONNECT_MAX_S": "2",
            "TELECARE_DB__DSN": dsn,
            "TELECARE_JOURNAL__PATH": str(work / "journal.sqlite3"),
            "TELECARE_HTTP__PORT": str(http_port),
            "TELECARE_AUTH__STORE": str(work / "auth.sqlite3"),
            "TELECARE_AUTH__DEV_CREDENTIALS_FILE": str(work / "dev-credentials.json"),
        }
    )
    env.update(extra)
    return env


def spawn_gateway(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "gateway", "run"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float) -> float:
    """Seconds until ``/readyz`` answers 200 (raises with the log's tail otherwise)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited {proc.returncode}: {tail(log)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"gateway not ready in {timeout}s: {tail(log)}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return "(no log)"


def metrics(url: str) -> dict[str, float]:
    """Prometheus samples by ``name`` or ``name{label=value,...}``."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text):
        for s in family.samples:
            key = s.name
            if s.labels:
                key += "{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}"
            out[key] = s.value
    return out
