"""One entry point for the CLI, the API and the page: which report, for which scope, as a
model or as CSV."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from psycopg.rows import tuple_row

from devices.scheme import Scheme
from gateway.reports import csvout, figures, schedule3
from gateway.reports.models import (
    KpiPack,
    NotifiableList,
    ResponseReport,
    Schedule3Return,
    VisitReturn,
)
from gateway.reports.scope import Period, PeriodKind, Scope, scope_for
from gateway.reports.targets import resolve

Report = ResponseReport | KpiPack | NotifiableList | VisitReturn | Schedule3Return


class ReportKind(StrEnum):
    RESPONSE = "response"  # the monthly response return
    KPI = "kpi"  # the quarterly KPI pack
    NOTIFIABLE = "notifiable"  # events for the next working day
    VISITS = "visits"  # Thurrock schedule 3: call-outs per client per week


DEFAULT_PERIOD = {
    ReportKind.RESPONSE: PeriodKind.MONTH,
    ReportKind.KPI: PeriodKind.QUARTER,
    ReportKind.NOTIFIABLE: PeriodKind.DAY,
    ReportKind.VISITS: PeriodKind.MONTH,
}

# Reports that name clients (a reference, never a name): a commissioner may have them.
# Nothing any report returns carries names, notes or carer identities for a commissioner.
QUERIES = {
    ReportKind.RESPONSE: 2,
    ReportKind.KPI: 4,
    ReportKind.NOTIFIABLE: 1,
    ReportKind.VISITS: 1,
}


async def build_scope(conn: figures.Conn, scheme: Scheme, p: Period) -> Scope:
    """The scope with this scheme's targets (its ``report_targets`` rows over the defaults)."""
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(
            "SELECT scheme, priority, measure, tier, within_s, goal_pct FROM report_targets"
            " WHERE scheme IN (%s, '*')",
            (scheme.id,),
        )
        rows = await cur.fetchall()
    return scope_for(scheme, p, resolve(scheme.id, rows))


async def produce(
    conn: figures.Conn,
    kind: ReportKind,
    scope: Scope,
    *,
    suppress: bool = False,
    carers: bool = True,
    tick: Callable[[], Any] | None = None,
) -> Report:
    match kind:
        case ReportKind.RESPONSE:
            report = await figures.response(conn, scope, suppress=suppress, tick=tick)
            # Planned visits' punctuality joins the monthly figures where there were any.
            p = await schedule3.punctuality(conn, scope)
            return report.model_copy(update={"visit_punctuality": p if p.visits else None})
        case ReportKind.KPI:
            return await figures.kpi_pack(conn, scope, suppress=suppress, carers=carers, tick=tick)
        case ReportKind.NOTIFIABLE:
            return await figures.notifiable(conn, scope, tick=tick)
        case ReportKind.VISITS:
            return await figures.visits(conn, scope, tick=tick)


def to_csv(report: Report) -> str:
    match report:
        case ResponseReport():
            return csvout.response_csv(report)
        case KpiPack():
            return csvout.kpi_csv(report)
        case NotifiableList():
            return csvout.notifiable_csv(report)
        case VisitReturn():
            return csvout.visits_csv(report)
        case Schedule3Return():
            return csvout.schedule3_csv(report)
