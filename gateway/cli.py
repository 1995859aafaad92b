"""The ``telecare`` command: one entry point for every part of the product."""

from __future__ import annotations

import asyncio
import faulthandler
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import typer.core

if TYPE_CHECKING:
    from rich.console import Console

    from gateway.config import Settings

# Typer carries its own copy of click; a command is whatever its groups hold.
Command = Any

# Only what ``telecare gateway run`` needs is imported here. Every other subcommand's module
# (reports, users, provisioning, the simulator: together about 0.4 s of imports) is imported
# when that subcommand is chosen, or when ``--help`` lists it: a restarted gateway is ready
# sooner (docs/performance.md, "Recovery").


def _simulate_app() -> typer.Typer:
    # The scenario simulator lives in simulator/ (it speaks to the gateway only over MQTT and
    # HTTP).
    from simulator.cli import hints, list_scenarios, repeat, run

    simulate = typer.Typer(help="Simulated devices publishing over MQTT.", no_args_is_help=True)
    simulate.command("run")(run)
    simulate.command("list")(list_scenarios)
    simulate.command("repeat")(repeat)
    simulate.command("hints")(hints)
    simulate.command("stream")(simulate_stream)
    return simulate


def _carers_app() -> typer.Typer:
    from gateway.users_cli import issue_tokens

    carers = typer.Typer(
        help="Carers: sign-in tokens for the carer web page.", no_args_is_help=True
    )
    carers.command("issue-tokens")(issue_tokens)
    return carers


def _users_app() -> typer.Typer:
    from gateway.users_cli import users_app

    return users_app


def _devices_app() -> typer.Typer:
    from gateway.provision_cli import provision_command

    devices = typer.Typer(
        help="Broker credentials and ACL for devices, handsets, the gateway.",
        no_args_is_help=True,
    )
    devices.command("provision")(provision_command)
    return devices


def _report_app() -> typer.Typer:
    from gateway.reports.cli import report_app

    return report_app


def _db_app() -> typer.Typer:
    from gateway.reports.cli import db_app

    return db_app


# name -> (the sub-app's builder, the options ``add_typer`` would have been given)
_LAZY: dict[str, tuple[Callable[[], typer.Typer], dict[str, Any]]] = {
    "simulate": (_simulate_app, {}),
    "carers": (_carers_app, {}),
    "users": (_users_app, {}),
    "devices": (_devices_app, {"no_args_is_help": True}),
    "report": (_report_app, {"no_args_is_help": True}),
    "db": (_db_app, {}),
}


def _load(name: str) -> Command:
    build, options = _LAZY[name]
    holder = typer.Typer()
    holder.add_typer(build(), name=name, **options)
    group = typer.main.get_command(holder)
    assert isinstance(group, typer.core.TyperGroup)
    return group.commands[name]


class _LazyCommands(MutableMapping[str, Command]):
    """The top-level commands, the lazy ones built on first lookup (names listed without
    loading, so an unknown command's suggestions cost nothing)."""

    def __init__(self, eager: MutableMapping[str, Command]) -> None:
        self._loaded: dict[str, Command] = dict(eager)
        self._names = list(eager) + [n for n in _LAZY if n not in eager]

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in _LAZY:
                raise KeyError(name)
            self._loaded[name] = _load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, cmd: Command) -> None:
        if name not in self._names:
            self._names.append(name)
        self._loaded[name] = cmd

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._loaded.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


class _LazyGroup(typer.core.TyperGroup):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _LazyCommands(self.commands)


# No locals in tracebacks: they would print settings, tokens and residents' details.
app = typer.Typer(
    help="Telecare alarm-response gateway.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    cls=_LazyGroup,
)
gateway_app = typer.Typer(help="Run the gateway service.", no_args_is_help=True)
scheme_app = typer.Typer(help="Scheme files: sites, flats, residents, devices, carers, rota.")
protocol_app = typer.Typer(help="The device/Careline wire protocol.", no_args_is_help=True)
app.add_typer(gateway_app, name="gateway")
app.add_typer(scheme_app, name="scheme", no_args_is_help=True)
app.add_typer(protocol_app, name="protocol")


def _console(stderr: bool = False) -> Console:
    """rich's console, imported when a command prints (``gateway run`` never does)."""
    from rich.console import Console

    return Console(stderr=stderr)


SchemeOpt = Annotated[
    list[Path] | None,
    typer.Option("--scheme", "-s", help="Scheme file (repeatable). Default: TELECARE_SCHEMES."),
]


VisitsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--visits",
        help="Visit schedule file (repeatable). Default: TELECARE_VISITS, plus each scheme"
        " file's <stem>.visits.yaml beside it.",
    ),
]


@gateway_app.command("run")
def gateway_run(
    scheme: SchemeOpt = None,
    visits: VisitsOpt = None,
    standby: Annotated[
        bool,
        typer.Option(
            "--standby",
            help="Get ready (imports, schemes, services), then wait for the gateway running on "
            "the same journal to stop and take over from it at once.",
        ),
    ] = False,
) -> None:
    """Run the gateway: MQTT ingest, journal, shipper and the HTTP API, until SIGTERM."""
    from devices.scheme import SchemeError
    from gateway import logs
    from gateway.broker_conn import publisher_refusal
    from gateway.ingest import FatalMqttError
    from gateway.journal import JournalError
    from gateway.service import Gateway
    from gateway.startup import StartupError

    # SIGUSR1 prints every thread's stack to stderr (the service log): how a gateway that will
    # not stop, or is stuck, is diagnosed without killing it.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = _settings()
    if scheme:
        settings = settings.model_copy(update={"schemes": scheme})
    if visits:
        settings = settings.model_copy(update={"visits": visits})
    logs.configure(settings.environment)
    try:
        gw = Gateway(settings, standby=standby)
    except SchemeError as exc:
        _refuse([f"scheme error: {exc}"])
    refusal = publisher_refusal(settings.mqtt)
    if refusal is not None:
        _refuse([refusal])
    try:
        asyncio.run(gw.run())
    except (JournalError, FatalMqttError, StartupError) as exc:
        _refuse([str(exc)])
    except ExceptionGroup as group:
        # The service's TaskGroup wraps a task's fatal error; refuse in one line when every
        # failure is one we can explain, and let anything else (a bug) show its traceback.
        fatal, rest = group.split((JournalError, FatalMqttError, StartupError))
        if fatal is None or rest is not None:
            raise
        _refuse([str(e) for e in _leaves(fatal)])


def _refuse(lines: list[str], code: int = 2) -> NoReturn:
    """A start-up refusal: one plain line per problem on stderr, no traceback."""
    for line in lines:
        sys.stderr.write(f"telecare: refusing to start: {line}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def _settings() -> Settings:
    from gateway.startup import StartupRefused, load_settings

    try:
        return load_settings()
    except StartupRefused as exc:
        _refuse(exc.lines)


def _leaves(group: BaseExceptionGroup[Exception]) -> list[Exception]:
    out: list[Exception] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


@scheme_app.command("load")
def scheme_load(path: Path) -> None:
    """Validate a scheme file and summarise it; errors name the offending line."""
    from rich.table import Table

    from devices.scheme import SchemeError, load_scheme

    try:
        s = load_scheme(path)
    except SchemeError as exc:
        _console(stderr=True).print(f"[red]invalid scheme[/red] {exc}")
        raise typer.Exit(1) from exc
    blocks = [b for site in s.sites for b in site.blocks]
    flats = [f for b in blocks for f in b.flats]
    table = Table(title=f"{s.name} ({s.id}, {s.kind})")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, n in (
        ("sites", len(s.sites)),
        ("blocks", len(blocks)),
        ("flats", len(flats)),
        ("residents", len(s.residents)),
        ("devices", len(s.devices)),
        ("carers", len(s.carers)),
        ("rota shifts", len(s.rota)),
    ):
        table.add_row(label, str(n))
    _console().print(table)
    _console().print(f"[green]ok[/green] {path}")


@protocol_app.command("schema")
def protocol_schema(
    out: Annotated[Path | None, typer.Option(help="Write one .json file per model here.")] = None,
) -> None:
    """Print (or write) the JSON Schemas of the device event and Careline call-out."""
    from devices.events import json_schemas

    schemas = json_schemas()
    if out is None:
        json.dump(schemas, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas.items():
        (out / name).write_text(json.dumps(schema, indent=2) + "\n")
        _console().print(f"wrote {out / name}")


def simulate_stream(
    scheme: Annotated[Path, typer.Option("--scheme", "-s")] = Path(
        "examples/hazelhurst-court.yaml"
    ),
    count: Annotated[int, typer.Option(min=1, max=1_000_000)] = 100,
    rate: Annotated[float, typer.Option(help="Events per second (0 = as fast as possible).")] = 0,
    seed: int = 1,
) -> None:
    """Publish a short stream of plausible device events (QoS 1) and wait for every PUBACK."""
    from devices.scheme import load_scheme
    from devices.topics import TopicLayout
    from simulator.publisher import Publisher, event_stream

    settings = _settings()
    s = load_scheme(scheme)
    layout = TopicLayout(settings.mqtt.topic_root, settings.mqtt.zigbee_root)
    pub = Publisher(settings.mqtt.host, settings.mqtt.port)
    started = time.monotonic()
    try:
        for i, out in enumerate(event_stream(s, count, seed, layout)):
            pub.publish(out.topic, out.payload())
            if rate > 0:
                time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
        if not pub.wait_acked(count, timeout=120):
            _console(stderr=True).print("[red]broker did not acknowledge every event[/red]")
            raise typer.Exit(1)
    finally:
        pub.close()
    _console().print(f"published {count} events for {s.id} in {time.monotonic() - started:.2f}s")


@app.command("events")
def events(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    url: Annotated[str | None, typer.Option(help="Gateway base URL.")] = None,
) -> None:
    """Show the latest device events recorded in TimescaleDB, via the gateway API."""
    import httpx
    from rich.table import Table

    from gateway.users_cli import api_client

    settings = _settings()
    base = url or f"http://{settings.http.host}:{settings.http.port}"
    try:
        http = api_client(base, settings)
        try:
            rows = http.get("/api/v1/events", params={"limit": limit}).json()
            stats = http.get("/api/v1/ingest").json()
        finally:
            http.close()
    except httpx.HTTPError as exc:
        _console(stderr=True).print(f"[red]gateway not reachable at {base}[/red]: {exc}")
        raise typer.Exit(1) from exc
    schemes = ", ".join(sorted({r["scheme"] for r in rows})) or "no events yet"
    table = Table(title=f"Latest {len(rows)} device events in TimescaleDB ({schemes})")
    for col in ("received (UTC)", "device", "kind", "location", "battery"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        table.add_row(
            r["received_at"][11:23],
            r["device_id"],
            r["kind"],
            r["location"] or "",
            "" if r["battery_pct"] is None else f"{r['battery_pct']}%",
        )
    _console().print(table)
    _console().print(
        f"journal head {stats['journal_head']}, shipped {stats['shipped']}, "
        f"epoch {stats['journal_epoch'][:8]}"
    )


if __name__ == "__main__":
    app()
