"""``telecare report ...`` (the figures, straight from TimescaleDB) and ``telecare db ...``
(migrations and retention). Every export goes on the audit trail."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from devices.events import Priority
from devices.scheme import Scheme, SchemeError, load_scheme
from gateway.config import Settings
from gateway.reports.models import ResponseReport
from gateway.reports.scope import PeriodError, PeriodKind, period
from gateway.reports.service import (
    DEFAULT_PERIOD,
    QUERIES,
    Report,
    ReportKind,
    build_scope,
    produce,
    to_csv,
)
from gateway.reports.targets import Measure

report_app = typer.Typer(help="Commissioners' figures and the councils' returns.")
db_app = typer.Typer(help="The TimescaleDB schema: migrations and retention.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

# Ranges longer than this show a progress bar (a quarter's queries take a moment).
_LONG_DAYS = 31


def _settings() -> Settings:
    return Settings()


def _dsn(settings: Settings) -> str:
    return settings.db.dsn.get_secret_value()


def _schemes(settings: Settings, files: list[Path] | None) -> dict[str, Scheme]:
    out = {}
    for path in files or settings.schemes:
        try:
            s = load_scheme(path)
        except SchemeError as exc:
            err.print(f"[red]invalid scheme[/red] {exc}")
            raise typer.Exit(2) from exc
        out[s.id] = s
    return out


def _pick(schemes: dict[str, Scheme], scheme_id: str | None) -> Scheme:
    if scheme_id is None:
        if len(schemes) == 1:
            return next(iter(schemes.values()))
        err.print(f"name a scheme with --scheme-id: {', '.join(sorted(schemes))}")
        raise typer.Exit(2)
    if scheme_id not in schemes:
        err.print(f"scheme {scheme_id!r} is not among the loaded schemes: {', '.join(schemes)}")
        raise typer.Exit(2)
    return schemes[scheme_id]


class Format:
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


async def _run(
    dsn: str,
    kind: ReportKind,
    scheme: Scheme,
    pk: PeriodKind,
    on: date,
    until: date | None,
    suppress: bool,
) -> Report:
    try:
        p = period(pk, on, until)
    except PeriodError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=5) as conn:
        scope = await build_scope(conn, scheme, p)
        if (p.end - p.start).days <= _LONG_DAYS:
            return await produce(conn, kind, scope, suppress=suppress)
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task(f"{kind.value} {p.label}", total=QUERIES[kind])
            return await produce(
                conn, kind, scope, suppress=suppress, tick=lambda: bar.advance(task)
            )


def _audit(kind: ReportKind, scheme: str, label: str, fmt: str) -> None:
    _audit_named(kind.value, scheme, label, fmt)


def _audit_named(kind: str, scheme: str, label: str, fmt: str) -> None:
    from gateway.users_cli import _operator, _store

    try:
        _, audit = _store()
        audit.record(
            "reports.export",
            username=_operator(),
            target=f"{kind} {scheme} {label}",
            detail={"format": fmt, "via": "cli"},
        )
    except OSError as exc:  # the account store is unwritable: say so, never hide the export
        err.print(f"[yellow]could not record the export on the audit trail: {exc}[/yellow]")


def _table(report: ResponseReport) -> None:
    h = report.head
    t = Table(title=f"{h.scheme_name}: response figures, {h.period.label} ({h.period.timezone})")
    for col in ("group", "alarms", "counted", "excl.", "accept p50/p90/max s"):
        t.add_column(col, justify="right" if col != "group" else "left")
    t.add_column("answer ≤T1 / ≤T2 %", justify="right")
    t.add_column("attend ≤T1 / ≤T2 %", justify="right")

    def s(v: Any) -> str:
        return "-" if v is None else (f"{v:g}" if isinstance(v, float) else str(v))

    for g in report.groups:
        excl = [g.test_calls, g.cancelled, g.false_alarms]
        t.add_row(
            g.value if g.dimension == "all" else f"{g.dimension}: {g.value}",
            s(g.alarms),
            s(g.counted),
            "/".join(s(v) for v in excl),
            f"{s(g.accept.p50)}/{s(g.accept.p90)}/{s(g.accept.max)}",
            " / ".join(s(w.pct) for w in g.answer_within),
            " / ".join(s(w.pct) for w in g.attend_within),
        )
    console.print(t)
    console.print("excl. = test calls / cancelled / false alarms (not in the times or shares)")


SchemeIdOpt = Annotated[
    str | None, typer.Option("--scheme-id", help="Scheme id (default: the only one loaded).")
]
SchemeFileOpt = Annotated[
    list[Path] | None,
    typer.Option("--scheme", "-s", help="Scheme file (repeatable). Default: TELECARE_SCHEMES."),
]
PeriodOpt = Annotated[
    PeriodKind | None,
    typer.Option(
        "--period", help="day, week, month, quarter or custom (default: the report's own)."
    ),
]
OnOpt = Annotated[
    str | None, typer.Option(help="A local day in the period (YYYY-MM-DD). Default: today.")
]
UntilOpt = Annotated[
    str | None, typer.Option(help="Last day of a custom period (YYYY-MM-DD), included.")
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")]
SuppressOpt = Annotated[
    bool, typer.Option("--suppress-small", help="Withhold counts of 1 to 4 people.")
]


def _day(text: str | None, what: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        err.print(f"[red]{what} must be a day as YYYY-MM-DD, not {text!r}[/red]")
        raise typer.Exit(2) from exc


@report_app.command("show")
def report_show(
    kind: Annotated[ReportKind, typer.Argument(help="response, kpi, notifiable or visits")],
    scheme_id: SchemeIdOpt = None,
    scheme: SchemeFileOpt = None,
    period_kind: PeriodOpt = None,
    on: OnOpt = None,
    until: UntilOpt = None,
    fmt: FormatOpt = Format.TABLE,
    out: OutOpt = None,
    suppress: SuppressOpt = False,
) -> None:
    """A report for one scheme and period, from TimescaleDB, as a table, JSON or CSV."""
    if fmt not in (Format.TABLE, Format.JSON, Format.CSV):
        err.print(f"[red]--format is table, json or csv, not {fmt!r}[/red]")
        raise typer.Exit(2)
    settings = _settings()
    chosen = _pick(_schemes(settings, scheme), scheme_id)
    pk = period_kind or DEFAULT_PERIOD[kind]
    first = _day(on, "--on") or datetime.now(chosen.tz).date()  # today, scheme-local
    try:
        report = asyncio.run(
            _run(_dsn(settings), kind, chosen, pk, first, _day(until, "--until"), suppress)
        )
    except psycopg.OperationalError as exc:
        err.print(f"[red]database unavailable[/red]: {str(exc).strip().splitlines()[0]}")
        raise typer.Exit(1) from exc
    if fmt == Format.TABLE and not isinstance(report, ResponseReport):
        fmt = Format.JSON  # only the response figures have a table view
    if fmt == Format.TABLE:
        assert isinstance(report, ResponseReport)
        _table(report)
    else:
        text = to_csv(report) if fmt == Format.CSV else report.model_dump_json(indent=2) + "\n"
        if out is not None:
            out.write_text(text, encoding="utf-8")
            err.print(f"wrote {out}")
        else:
            sys.stdout.write(text)
    _audit(kind, chosen.id, report.head.period.label, fmt)


@report_app.command("schedule3")
def report_schedule3(
    start: Annotated[
        str | None,
        typer.Option(help="The Monday the return starts (YYYY-MM-DD). Default: the last full one."),
    ] = None,
    weeks: Annotated[int, typer.Option(min=1, max=52, help="Weeks in the return.")] = 4,
    scheme_id: SchemeIdOpt = None,
    scheme: SchemeFileOpt = None,
    visits: Annotated[
        list[Path] | None,
        typer.Option(
            "--visits", help="Visit schedule file (default: <scheme>.visits.yaml beside it)."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = Format.CSV,
    out: OutOpt = None,
) -> None:
    """Thurrock schedule 3 for planned visits, per client per week, from TimescaleDB."""
    from gateway.reports import schedule3

    if fmt not in (Format.JSON, Format.CSV):
        err.print(f"[red]--format is csv or json, not {fmt!r}[/red]")
        raise typer.Exit(2)
    settings = _settings()
    chosen = _pick(_schemes(settings, scheme), scheme_id)
    first = _day(start, "--start") or schedule3.default_start(datetime.now(chosen.tz).date(), weeks)
    try:
        p = schedule3.weeks_period(first, weeks)
        plan = schedule3.find_schedule(
            chosen,
            [*(visits or getattr(settings, "visits", None) or []), *(scheme or settings.schemes)],
        )
    except PeriodError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except SchemeError as exc:
        err.print(f"[red]invalid visit schedule[/red] {exc}")
        raise typer.Exit(2) from exc

    async def go() -> Report:
        async with await psycopg.AsyncConnection.connect(_dsn(settings), connect_timeout=5) as conn:
            scope = await build_scope(conn, chosen, p)
            return await schedule3.schedule3(conn, scope, weeks, plan)

    try:
        report = asyncio.run(go())
    except psycopg.OperationalError as exc:
        err.print(f"[red]database unavailable[/red]: {str(exc).strip().splitlines()[0]}")
        raise typer.Exit(1) from exc
    text = to_csv(report) if fmt == Format.CSV else report.model_dump_json(indent=2) + "\n"
    if out is not None:
        out.write_text(text, encoding="utf-8")
        err.print(f"wrote {out}")
    else:
        sys.stdout.write(text)
    _audit_named("schedule3", chosen.id, report.head.period.label, fmt)


@report_app.command("targets")
def report_targets(
    scheme_id: Annotated[str, typer.Option("--scheme-id", help="Scheme id, or '*' for all.")],
    priority: Annotated[str, typer.Option(help="P0-P3, or '*' for all.")] = "*",
    measure: Annotated[Measure | None, typer.Option(help="answer or attend.")] = None,
    tier: Annotated[int, typer.Option(min=1, max=2)] = 1,
    within_s: Annotated[int | None, typer.Option(min=1, help="Target in seconds.")] = None,
    goal_pct: Annotated[float | None, typer.Option(min=0.01, max=100)] = None,
) -> None:
    """Show a scheme's target overrides; with --measure, --within-s and --goal-pct, set one."""
    if priority != "*" and priority not in {p.value for p in Priority}:
        err.print(f"[red]--priority is P0, P1, P2, P3 or '*', not {priority!r}[/red]")
        raise typer.Exit(2)
    settings = _settings()
    setting = measure is not None and within_s is not None and goal_pct is not None

    async def go() -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(_dsn(settings)) as conn:
            if setting:
                await conn.execute(
                    "INSERT INTO report_targets (scheme, priority, measure, tier, within_s,"
                    " goal_pct) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (scheme, priority, measure, tier) DO UPDATE SET"
                    " within_s = EXCLUDED.within_s, goal_pct = EXCLUDED.goal_pct,"
                    " updated_at = now()",
                    (scheme_id, priority, str(measure), tier, within_s, Decimal(str(goal_pct))),
                )
                await conn.commit()
            cur = await conn.execute(
                "SELECT scheme, priority, measure, tier, within_s, goal_pct FROM report_targets"
                " WHERE scheme IN (%s, '*') ORDER BY 1, 2, 3, 4",
                (scheme_id,),
            )
            return list(await cur.fetchall())

    rows = asyncio.run(go())
    t = Table(title="Target overrides (the defaults apply elsewhere: docs/reports.md)")
    for col in ("scheme", "priority", "measure", "tier", "within s", "goal %"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(str(v) for v in r))
    console.print(t)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the versioned migrations (gateway/sql/NNN_*.sql) not yet applied; idempotent."""
    from gateway import storage

    settings = _settings()

    async def go() -> tuple[list[str], list[str]]:
        async with await psycopg.AsyncConnection.connect(_dsn(settings)) as conn:
            applied = await storage.migrate(conn)
            cur = await conn.execute("SELECT name FROM schema_migrations ORDER BY name")
            return applied, [r[0] for r in await cur.fetchall()]

    try:
        applied, present = asyncio.run(go())
    except psycopg.OperationalError as exc:
        err.print(f"[red]database unavailable[/red]: {str(exc).strip().splitlines()[0]}")
        raise typer.Exit(1) from exc
    for name in applied:
        console.print(f"applied {name}")
    console.print(f"schema current: {len(present)} migrations ({', '.join(present)})")


@db_app.command("retention")
def db_retention(
    heartbeat_days: Annotated[int, typer.Option(min=1)] = 90,
    record_years: Annotated[int, typer.Option(min=1)] = 8,
) -> None:
    """Delete heartbeats older than --heartbeat-days and records older than --record-years
    (the audit trail is never pruned here). Run it daily where TimescaleDB cannot schedule."""
    settings = _settings()

    async def go() -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(_dsn(settings)) as conn:
            cur = await conn.execute(
                "SELECT * FROM telecare_retention(make_interval(days => %s),"
                " make_interval(years => %s))",
                (heartbeat_days, record_years),
            )
            rows = list(await cur.fetchall())
            await conn.commit()
            return rows

    rows = asyncio.run(go())
    console.print(json.dumps({str(r[0]): int(r[1]) for r in rows}, indent=2))
