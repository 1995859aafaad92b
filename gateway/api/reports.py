"""Commissioners' figures over HTTP: ``/api/v1/reports/{scheme}/...`` as JSON or CSV, and the
``/reports`` page with its charts. Managers and commissioners only; a commissioner never sees
a carer's identity (client references, never names, are in any report). Every export and page
view is written to the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api_models import Role
from devices.scheme import SCHEME_ID, Scheme, SchemeError
from gateway.api.deps import AuthDep, LiveDep, SettingsDep
from gateway.api.errors import errors
from gateway.api.params import SchemePath
from gateway.api.security import allow, client_address
from gateway.auth.store import Session
from gateway.config import Settings
from gateway.reports import page, schedule3
from gateway.reports.models import (
    KpiPack,
    NotifiableList,
    ResponseReport,
    Schedule3Return,
    VisitReturn,
)
from gateway.reports.scope import MAX_DAYS, PeriodError, PeriodKind, Scope, period
from gateway.reports.service import (
    DEFAULT_PERIOD,
    Report,
    ReportKind,
    build_scope,
    produce,
    to_csv,
)

router = APIRouter(tags=["reports"])

READERS = (Role.MANAGER, Role.COMMISSIONER)
Reader = Annotated[Session, allow(*READERS)]


class Format(StrEnum):
    JSON = "json"
    CSV = "csv"


PeriodQuery = Annotated[
    PeriodKind | None,
    Query(
        alias="period",
        description="day, week (Monday to Sunday), month, quarter, or custom (with `days`). "
        "Default: the report's own (response and visits: month; kpi: quarter; "
        "notifiable: day).",
    ),
]
OnQuery = Annotated[
    date | None,
    Query(
        description="A local day in the period (the first day of a custom one). Default: "
        "today in the scheme's time zone. Days before 1970 or after 2100 are 404."
    ),
]
DaysQuery = Annotated[
    int, Query(ge=1, le=MAX_DAYS, description="Length of a custom period in days.")
]
FormatQuery = Annotated[Format, Query(alias="format", description="json (default) or csv.")]
SuppressQuery = Annotated[
    bool,
    Query(description="Withhold counts of 1 to 4 people (and shares they could be read from)."),
]

_CSV = {
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "The report (JSON), or with format=csv the council's return as CSV.",
}


def _responses() -> dict[int | str, dict[str, Any]]:
    return {200: _CSV, **errors(401, 403, 404, 503)}


def _scheme(live: LiveDep, scheme: str) -> Scheme:
    s = live.scheme(scheme)
    if s is None:
        raise HTTPException(404, f"scheme {scheme!r} is not served by this gateway")
    return s


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of its own per report (reports are rare and may take seconds): 503 when
    the database is away or not yet migrated, never a hang."""
    try:
        conn = await psycopg.AsyncConnection.connect(
            settings.db.dsn.get_secret_value(),
            autocommit=True,
            connect_timeout=3,
            options="-c statement_timeout=60000",
        )
    except psycopg.OperationalError as exc:
        raise HTTPException(503, "database unavailable") from exc
    try:
        async with conn:
            yield conn
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable) as exc:
        raise HTTPException(503, f"database unavailable: {type(exc).__name__}") from exc


async def _report(
    kind: ReportKind,
    scheme: Scheme,
    settings: Settings,
    me: Session,
    pk: PeriodKind | None,
    on: date | None,
    days: int,
    suppress: bool,
) -> tuple[Report, Scope]:
    first = on or datetime.now(scheme.tz).date()
    pk = pk or DEFAULT_PERIOD[kind]
    try:
        until = date.fromordinal(first.toordinal() + days - 1) if pk is PeriodKind.CUSTOM else None
        p = period(pk, first, until)
    except (PeriodError, OverflowError, ValueError) as exc:
        raise HTTPException(404, f"no report for that period: {exc}") from exc
    async with _database(settings) as conn:
        scope = await build_scope(conn, scheme, p)
        # A commissioner never learns which carer had a waking night.
        report = await produce(
            conn, kind, scope, suppress=suppress, carers=me.role is not Role.COMMISSIONER
        )
    return report, scope


async def _answer(
    kind: ReportKind,
    report: Report,
    fmt: Format,
    me: Session,
    auth: AuthDep,
    request: Request,
) -> Response:
    return await _answer_named(kind.value, report, fmt, me, auth, request)


async def _answer_named(
    kind: str,
    report: Report,
    fmt: Format,
    me: Session,
    auth: AuthDep,
    request: Request,
) -> Response:
    await auth.audit.arecord(
        "reports.export",
        username=me.username,
        role=me.role.value,
        target=f"{kind} {report.head.scheme} {report.head.period.label}",
        address=client_address(request),
        detail={"format": fmt.value, "suppressed": report.head.suppressed},
    )
    if fmt is Format.CSV:
        name = f"{report.head.scheme}-{kind}-{report.head.period.label}".replace(" ", "_")
        return Response(
            to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return JSONResponse(report.model_dump(mode="json"))


@dataclass
class PeriodArgs:
    """What every period report's route takes besides its own options: the scheme, the
    caller and the period (its query parameters are the route's own in the OpenAPI document)."""

    scheme: SchemePath
    request: Request
    live: LiveDep
    settings: SettingsDep
    auth: AuthDep
    me: Reader
    period_kind: PeriodQuery = None
    on: OnQuery = None
    days: DaysQuery = 1
    fmt: FormatQuery = Format.JSON

    async def answer(self, kind: ReportKind, suppress: bool = False) -> Response:
        s = _scheme(self.live, self.scheme)
        report, _ = await _report(
            kind, s, self.settings, self.me, self.period_kind, self.on, self.days, suppress
        )
        return await _answer(kind, report, self.fmt, self.me, self.auth, self.request)


Period = Annotated[PeriodArgs, Depends()]


@router.get(
    "/api/v1/reports/{scheme}/response", response_model=ResponseReport, responses=_responses()
)
async def response_report(args: Period, suppress_small: SuppressQuery = False) -> Response:
    """Response times (accept, arrive, attend from the decision to deploy, resolve: p50, p90,
    p95, max by ``percentile_disc``) and the share within each target, overall and by
    priority, kind, night/day and week. As CSV: the monthly response return."""
    return await args.answer(ReportKind.RESPONSE, suppress_small)


@router.get("/api/v1/reports/{scheme}/kpi", response_model=KpiPack, responses=_responses())
async def kpi_report(args: Period, suppress_small: SuppressQuery = False) -> Response:
    """The quarterly KPI pack: alarms by kind, falls and ambulances, hospital admissions,
    unable-to-gain-access, emergency call-outs within target, sleep-in waking nights (the
    carer withheld from commissioners), device faults and how long they took to mend."""
    return await args.answer(ReportKind.KPI, suppress_small)


@router.get(
    "/api/v1/reports/{scheme}/notifiable", response_model=NotifiableList, responses=_responses()
)
async def notifiable_report(args: Period) -> Response:
    """Events the council must hear of by the next working day (hospital admission, unable
    to gain access, not returning, major incident), by client reference."""
    return await args.answer(ReportKind.NOTIFIABLE)


@router.get("/api/v1/reports/{scheme}/visits", response_model=VisitReturn, responses=_responses())
async def visits_report(args: Period) -> Response:
    """Call-outs per client per week, in Thurrock's schedule 3 fields."""
    return await args.answer(ReportKind.VISITS)


StartQuery = Annotated[
    date | None,
    Query(
        description="The Monday the return starts (local). Default: the Monday `weeks` whole "
        "weeks before the current week. Any other day is 404, like a period outside 1970-2100."
    ),
]
WeeksQuery = Annotated[
    int, Query(ge=1, le=schedule3.MAX_WEEKS, description="Weeks in the return (4 by default).")
]


@router.get(
    "/api/v1/reports/{scheme}/schedule3",
    response_model=Schedule3Return,
    responses=_responses(),
)
async def schedule3_report(
    scheme: SchemePath,
    request: Request,
    live: LiveDep,
    settings: SettingsDep,
    auth: AuthDep,
    me: Reader,
    start: StartQuery = None,
    weeks: WeeksQuery = 4,
    fmt: FormatQuery = Format.JSON,
) -> Response:
    """Thurrock schedule 3 for planned visits: per client, service level type and week, the
    actual, frustrated, cancelled, missed and extra quantities, visits and call minutes, from
    the visit lifecycle (docs/visits.md), with the period's visit punctuality."""
    s = _scheme(live, scheme)
    first = start or schedule3.default_start(datetime.now(s.tz).date(), weeks)
    try:
        p = schedule3.weeks_period(first, weeks)
    except PeriodError as exc:  # not a Monday, or outside the days a report covers
        raise HTTPException(404, f"no report for that period: {exc}") from exc
    try:
        plan = schedule3.find_schedule(
            s, [*(getattr(settings, "visits", None) or []), *settings.schemes]
        )
    except SchemeError as exc:
        raise HTTPException(503, f"the scheme's visit schedule is invalid: {exc}") from exc
    async with _database(settings) as conn:
        scope = await build_scope(conn, s, p)
        report = await schedule3.schedule3(conn, scope, weeks, plan)
    return await _answer_named("schedule3", report, fmt, me, auth, request)


PageScheme = Annotated[
    str | None,
    Query(
        alias="scheme",
        pattern=SCHEME_ID,
        description="Scheme id (default: the first this gateway serves).",
    ),
]


@router.get(
    "/reports",
    # Declared with no media type of its own: FastAPI would otherwise declare the JSON error
    # bodies as text/html too (the route still answers HTMLResponse, text/html).
    response_class=Response,
    responses={
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The report page (HTML with inline SVG charts).",
        },
        **errors(401, 403, 404, 503),
    },
)
async def report_page(
    request: Request,
    live: LiveDep,
    settings: SettingsDep,
    auth: AuthDep,
    me: Reader,
    scheme: PageScheme = None,
    period_kind: PeriodQuery = None,
    on: OnQuery = None,
    days: DaysQuery = 1,
    suppress_small: SuppressQuery = False,
) -> HTMLResponse:
    """The report page: response-time distribution, weekly trend against the targets,
    within-target bars per priority, night against day, and the KPI pack. Prints to PDF."""
    ids = live.scheme_ids()
    chosen = scheme or (ids[0] if ids else None)
    if chosen is None:
        raise HTTPException(404, "this gateway serves no scheme")
    s = _scheme(live, chosen)
    pk = period_kind or PeriodKind.MONTH
    figures, _ = await _report(ReportKind.RESPONSE, s, settings, me, pk, on, days, suppress_small)
    pack, _ = await _report(ReportKind.KPI, s, settings, me, pk, on, days, suppress_small)
    assert isinstance(figures, ResponseReport) and isinstance(pack, KpiPack)
    await auth.audit.arecord(
        "reports.view",
        username=me.username,
        role=me.role.value,
        target=f"page {s.id} {figures.head.period.label}",
        address=client_address(request),
    )
    return HTMLResponse(page.render(figures, pack, ids))
