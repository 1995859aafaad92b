"""``telecare simulate run``: play a scenario against a gateway and print the verdict."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devices.scheme import load_scheme
from simulator import demo
from simulator.runner import RunOptions, RunStopped, product_signature, run_with_rerun
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
    if "visits_planned" in v:
        h = v["handsets"]
        made = f"{h.get('visits_made', 0)} made, {h.get('visits_cut_short', 0)} cut short"
        rows.append(("planned visits (schedule)", f"{v['visits_planned']}: {made}"))
        rows.append(
            (
                "visits late by the bar / not made",
                f"{v['visits_late_by_bar']} / {v['visits_not_made']}",
            )
        )
        rows.append(("visit steps recorded", json.dumps(v["visits_steps"], sort_keys=True)))
    rows.append(("run time: scheme / real", f"{_hms(v['scheme_seconds'])} / {v['real_seconds']} s"))
    for name, value in rows:
        t.add_row(name, str(value))
    t.add_section()
    t.add_row("[bold]the product[/bold]", "")
    for c in v["product_checks"]:
        t.add_row(f"  {c['check']} {c['want']}", f"{_mark(c['status'])} ({c['got']})")
    for c in v["timing_checks"]:
        t.add_row(f"  {c['check']} {c['want']}", f"{_mark(c['status'])} ({c['got']})")
    t.add_section()
    for name, value in health_rows(v):
        t.add_row(name, str(value))
    return t


def _mark(status: str) -> str:
    return {
        "pass": "[green]pass[/green]",
        "fail": "[red]FAIL[/red]",
        "not judged": "[yellow]not judged[/yellow]",
    }[status]


def health_rows(v: dict[str, Any]) -> list[tuple[str, Any]]:
    """The run's health: the simulator's slip, the gateway's lag, receipts and resends."""
    r = v["run"]
    api = r.get("gateway_api", {})
    rec = r.get("receipts", {})
    pub = r.get("publish", {})
    return [
        ("[bold]the run[/bold]", "kept time" if r.get("kept_time") else "did not keep time"),
        ("  simulator", r["summary"]),
        (
            "  gateway API: not ready / unreachable / slowest answer",
            f"{api.get('not_ready', 0)} / {api.get('unreachable', 0)} /"
            f" {api.get('api_answer_max_real_s', 0)} s",
        ),
        (
            "  gateway ingest to PUBACK p99 (real s, at most)",
            api.get("ingest_ack_p99_real_s_at_most"),
        ),
        ("  gateway longest stall (scheme s)", r.get("gateway_longest_stall_scheme_s")),
        (
            "  receipts / resends / still unreceipted",
            f"{sum(rec.get('receipts', {}).values())} / {rec.get('resends', 0)} /"
            f" {rec.get('unreceipted_at_end', 0)}",
        ),
        (
            "  publishes: acked / timed out (retried) / given up",
            f"{pub.get('published', 0)} / {pub.get('timed_out_and_retried', 0)} /"
            f" {pub.get('given_up', 0)}",
        ),
    ]


def print_verdict(v: dict[str, Any]) -> None:
    """The verdict table (or, for a run that never got going, why), then the outcome."""
    if "alarms_raised" in v:
        console.print(verdict_table(v))
    elif v.get("gateway_log_tail"):
        console.print("[dim]gateway log (last lines):[/dim]")
        console.print(v["gateway_log_tail"], markup=False, highlight=False)
    first = v.get("first_attempt")
    if first:
        console.print(
            f"(this is the second run, at x{v['speed']:g}: the first, at x{first['speed']:g},"
            " was not valid because the machine did not keep time: "
            + "; ".join(first["problems"])
            + ")",
            markup=False,
            highlight=False,
        )
    colour = {0: "green", 1: "red", 2: "yellow"}[v["exit_code"]]
    console.print(f"[bold {colour}]{v['outcome']}[/bold {colour}] (exit {v['exit_code']})")
    for p in v["run"]["problems"]:
        console.print(f"  run not valid: {p}", markup=False, highlight=False)
    if v.get("machine_message"):
        console.print(v["machine_message"], markup=False, highlight=False)


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
    rerun_slower: Annotated[
        bool, typer.Option(help="If the machine starved the run, run once more at half speed.")
    ] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Keep the spawned gateway's journal, accounts and log here, and describe it"
            " in STATE_DIR/gateway.json while it runs (the demo's live night)."
        ),
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="HTTP port for the spawned gateway (default: a free one).")
    ] = None,
) -> None:
    """Run a scenario (spawning its own gateway unless --gateway) and print the verdict.
    Exit 0 pass, 1 product failure, 2 run not valid (the machine, not the product)."""
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
        state_dir=state_dir,
        http_port=http_port,
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

        try:
            verdict = (run_with_rerun if rerun_slower else run_scenario)(scn, opts, progress)
        except (KeyboardInterrupt, RunStopped):
            console.print("stopped before the end: no verdict (the gateway it started is stopped)")
            raise typer.Exit(130) from None
    print_verdict(verdict)
    if json_path is not None:
        json_path.write_text(json.dumps(verdict, indent=2, default=str) + "\n")
        console.print(f"wrote {json_path}")
    raise typer.Exit(verdict["exit_code"])


def _env_opts(**kw: Any) -> RunOptions:
    return RunOptions(
        dsn=os.environ.get("TELECARE_DB__DSN"),
        mqtt_host=os.environ.get("TELECARE_MQTT__HOST", "127.0.0.1"),
        mqtt_port=int(os.environ.get("TELECARE_MQTT__PORT", "18830")),
        **kw,
    )


def carer_answers(v: dict[str, Any]) -> dict[str, Any]:
    """What the simulated carers did, in total: accepts per carer and outcomes sent."""
    h = v.get("handsets", {})
    return {
        "accepts_per_carer": v.get("accepts_per_carer"),
        "outcomes": {k: n for k, n in sorted(h.items()) if k.startswith("outcome:")},
    }


@app.command("repeat")
def repeat(
    scenario: Annotated[str, typer.Option("--scenario")],
    speeds: Annotated[str, typer.Option(help="Comma-separated speeds.")] = "200,400",
    runs: Annotated[int, typer.Option(min=1, max=10, help="Runs at each speed.")] = 3,
    seed: Annotated[int | None, typer.Option()] = None,
    json_path: Annotated[Path | None, typer.Option("--json")] = None,
) -> None:
    """Run a scenario ``runs`` times at each speed and compare the product's checks, which the
    same seed must give identically at any speed. Exit 0 identical, 1 they differ, 2 a run
    was not valid (the machine)."""
    scn = load_scenario(scenario)
    results: list[dict[str, Any]] = []
    for speed in (float(x) for x in speeds.split(",")):
        for i in range(runs):
            v = run_scenario(scn, _env_opts(speed=speed, seed=seed))
            sig = product_signature(v)
            results.append(
                {
                    "speed": speed,
                    "run": i + 1,
                    "exit_code": v["exit_code"],
                    "outcome": v["outcome"],
                    "real_seconds": v.get("real_seconds"),
                    "product": sig,
                    "carers": carer_answers(v),
                    "timing": {c["check"]: c["status"] for c in v["timing_checks"]},
                    "run_health": v["run"].get("summary"),
                }
            )
            console.print(
                f"x{speed:g} run {i + 1}: {v['outcome']} (exit {v['exit_code']}),"
                f" {json.dumps(sig, sort_keys=True)}",
                markup=False,
                highlight=False,
            )
    same_product = all(r["product"] == results[0]["product"] for r in results)
    same_carers = all(r["carers"] == results[0]["carers"] for r in results)
    console.print(f"product checks identical across {len(results)} runs: {same_product}")
    console.print(f"carers' answers (accepts per carer, outcomes) identical: {same_carers}")
    if json_path is not None:
        body = {"same_product": same_product, "same_carers": same_carers, "runs": results}
        json_path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    if any(r["exit_code"] == 2 for r in results):
        raise typer.Exit(2)
    raise typer.Exit(0 if same_product else 1)


@app.command("list")
def list_scenarios() -> None:
    """The scenarios in simulator/scenarios: name, scheme, start, length, speed and what."""
    for p in sorted(SCENARIO_DIR.glob("*.yaml")):
        s = load_scenario(p.stem)
        console.print(
            f"[bold]{s.name}[/bold]  {s.scheme.stem}, from {s.start:%H:%M} for"
            f" {s.duration_s / 3600:g} h, x{s.speed:g} by default"
        )
        console.print("    " + " ".join(s.description.split()), highlight=False)
    console.print("run one with: telecare simulate run --scenario NAME [--speed N] [--seed N]")


@app.command("hints")
def hints(
    live: Annotated[
        Path, typer.Option(help="gateway.json of a live night (run --state-dir).")
    ] = Path("var/demo/live/gateway.json"),
    scenario: Annotated[str, typer.Option(help="The live night's scenario.")] = "hazelhurst-night",
) -> None:
    """Who is on shift now in a live night's gateway, what is open, and how to sign in."""
    if not live.exists():
        console.print(f"no live night: {live} does not exist (make demo starts one)")
        raise typer.Exit(2)
    scn = load_scenario(scenario)
    scheme = load_scheme(scn.scheme_path())
    try:
        night = demo.read_live(live)
    except (httpx.HTTPError, RuntimeError, ValueError, KeyError) as exc:
        console.print(f"the live night's gateway did not answer: {exc}")
        raise typer.Exit(2) from None
    for line in demo.hint_lines(night, scheme.tz, scheme.id):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    app()
