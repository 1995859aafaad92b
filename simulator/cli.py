"""``telecare simulate run``: play a scenario against a gateway and print the verdict."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulator.runner import RunOptions
from simulator.runner import run as run_scenario
from simulator.scenario import SCENARIO_DIR, load_scenario

app = typer.Typer(help="Scenario simulator: devices, Careline and carers' handsets over MQTT.")
console = Console()


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def verdict_table(v: dict[str, Any]) -> Table:
    t = Table(title=f"Verdict: {v['scenario']} ({v['scheme']}, seed {v['seed']}, x{v['speed']:g})")
    t.add_column("figure")
    t.add_column("value", justify="right")
    rows = [
        ("alarms raised by the simulator", v["alarms_raised"]),
        ("known to the gateway (database)", v["alarms_known"]),
        ("  opened as their own alarm", v["alarms_opened"]),
        ("  merged into an open alarm", v["merged_into_open"]),
        ("accepted", v["accepted"]),
        ("arrived", v["arrived"]),
        ("resolved", v["resolved"]),
        ("escalated (offered to all)", v["escalated"]),
        ("alarms lost", v["lost"]),
        ("duplicate pages", v["duplicate_pages"]),
        ("events recorded twice", v["double_recorded_events"]),
        ("alarms raised by the gateway itself", v["gateway_only_alarms"]),
        ("time to accept p50 / p90", f"{_s(v['accept_p50_s'])} / {_s(v['accept_p90_s'])}"),
        ("time to arrive p50 / p90", f"{_s(v['arrive_p50_s'])} / {_s(v['arrive_p90_s'])}"),
        ("on site within scheme target", _p(v["on_site_within_target_pct"])),
        ("hub no-contact alerts", v["no_contact_alerts"]),
        (
            "ingest lag p50 / max (scheme s)",
            f"{_s(v['ingest_lag_p50_s'])} / {_s(v['ingest_lag_max_s'])}",
        ),
    ]
    if "accepted_within_pct" in v:
        rows.append(("accepted within expected time", _p(v["accepted_within_pct"])))
    if v["dead_letters_sent"] or v["dead_letters_db"]:
        rows.append(("dead letters sent", json.dumps(v["dead_letters_sent"], sort_keys=True)))
        rows.append(("dead letters in database", json.dumps(v["dead_letters_db"], sort_keys=True)))
    if v["sleep_in_over_two"]:
        rows.append(("sleep-in disturbed > 2 times", ", ".join(v["sleep_in_over_two"])))
    visits = v["handsets"].get("visits_done")
    if visits is not None:
        h = v["handsets"]
        extra = f"{h.get('visits_late', 0)} / {h.get('visits_missed', 0)}"
        rows.append(("planned visits made / >30 min late / missed", f"{visits} / {extra}"))
    rows.append(("run time: scheme / real", f"{_hms(v['scheme_seconds'])} / {v['real_seconds']} s"))
    for name, value in rows:
        t.add_row(name, str(value))
    for c in v["checks"]:
        mark = "[green]pass[/green]" if c["ok"] else "[red]FAIL[/red]"
        t.add_row(f"expect {c['check']} {c['want']}", f"{mark} ({c['got']})")
    return t


@app.command("run")
def run(
    scenario: Annotated[
        str, typer.Option("--scenario", help="Name in simulator/scenarios, or a path.")
    ],
    speed: Annotated[float | None, typer.Option(min=0.1, max=10_000)] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the verdict here.")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option(help="Use this gateway (base URL) instead of spawning one.")
    ] = None,
    topic_root: Annotated[str, typer.Option(help="With --gateway: its topic root.")] = "telecare",
    zigbee_root: Annotated[
        str, typer.Option(help="With --gateway: its Zigbee root.")
    ] = "zigbee2mqtt",
    dsn: Annotated[
        str | None, typer.Option(help="Database for the verdict. Default: TELECARE_DB__DSN.")
    ] = None,
) -> None:
    """Run a scenario (spawning its own gateway unless --gateway), print the verdict, exit 1 if
    the scenario's expectations fail."""
    try:
        scn = load_scenario(scenario)
    except FileNotFoundError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    opts = RunOptions(
        speed=speed,
        seed=seed,
        gateway_url=gateway,
        topic_root=topic_root,
        zigbee_root=zigbee_root,
        dsn=dsn or os.environ.get("TELECARE_DB__DSN"),
        mqtt_host=os.environ.get("TELECARE_MQTT__HOST", "127.0.0.1"),
        mqtt_port=int(os.environ.get("TELECARE_MQTT__PORT", "18830")),
    )
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[clock]}"),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(scn.name, total=scn.duration_s, clock="", counts="")

        def progress(done: float, total: float, counts: dict[str, int]) -> None:
            text = " ".join(f"{k} {n}" for k, n in counts.items())
            bar.update(task, completed=done, clock=f"+{_hms(done)}", counts=text)

        verdict = run_scenario(scn, opts, progress)
    console.print(verdict_table(verdict))
    if json_path is not None:
        json_path.write_text(json.dumps(verdict, indent=2, default=str) + "\n")
        console.print(f"wrote {json_path}")
    if not verdict["passed"]:
        raise typer.Exit(1)


@app.command("list")
def list_scenarios() -> None:
    """The scenarios in simulator/scenarios."""
    for p in sorted(SCENARIO_DIR.glob("*.yaml")):
        console.print(f"{p.stem}: {load_scenario(p.stem).description.strip()[:100]}")


if __name__ == "__main__":
    app()
