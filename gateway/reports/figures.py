"""Run the report queries for one scope and shape the rows (no figure is computed here: each
number is a column PostgreSQL returned, or a ratio of two of them)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from gateway.reports import sql
from gateway.reports.models import (
    Durations,
    FaultRow,
    Group,
    HistogramBar,
    KindCount,
    KpiPack,
    NotifiableEvent,
    NotifiableList,
    PeriodOut,
    ReportHead,
    ResponseReport,
    TargetOut,
    VisitReturn,
    VisitRow,
    WakingNight,
    Within,
)
from gateway.reports.scope import Scope, next_working_day
from gateway.reports.targets import PRIORITIES, Measure

SMALL_CELL = 5  # counts of 1 to 4 people are withheld when suppression is asked for

Conn = psycopg.AsyncConnection[Any]


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def pct(met: int, of: int) -> float | None:
    """100 * met / of to two places (half away from zero), null for no alarms."""
    if of == 0:
        return None
    q = (Decimal(100) * met / of).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    return float(q)


class _Cells:
    """Withholds counts of 1 to 4 (and what could be worked back from them) when asked."""

    def __init__(self, suppress: bool) -> None:
        self.suppress = suppress

    def count(self, n: int) -> int | None:
        return None if self.suppress and 0 < n < SMALL_CELL else n

    def within(self, tier: int, met: int, of: int) -> Within:
        if self.suppress and (0 < met < SMALL_CELL or 0 < of - met < SMALL_CELL or of < SMALL_CELL):
            return Within(tier=tier, met=self.count(met), of=self.count(of), pct=None)
        return Within(tier=tier, met=met, of=of, pct=pct(met, of))

    def durations(self, row: dict[str, Any], m: str, n: int) -> Durations:
        if self.suppress and 0 < n < SMALL_CELL:
            return Durations(n=None, p50=None, p90=None, p95=None, max=None)
        return Durations(
            n=n,
            p50=_num(row[f"{m}_p50"]),
            p90=_num(row[f"{m}_p90"]),
            p95=_num(row[f"{m}_p95"]),
            max=_num(row[f"{m}_max"]),
        )


def head(scope: Scope, suppress: bool = False) -> ReportHead:
    lo, hi = scope.bounds
    p = scope.period
    return ReportHead(
        scheme=scope.scheme_id,
        scheme_name=scope.scheme_name,
        period=PeriodOut(
            kind=p.kind,
            label=p.label,
            first_day=p.start,
            last_day=p.last,
            start=lo,
            end=hi,
            timezone=scope.tz.key,
        ),
        night_start=scope.night_start.strftime("%H:%M"),
        night_end=scope.night_end.strftime("%H:%M"),
        generated_at=datetime.now(UTC),
        suppressed=suppress,
    )


Tick = Callable[[], Any] | None


async def _rows(conn: Conn, query: str, scope: Scope, tick: Tick = None) -> list[dict[str, Any]]:
    params = {
        **scope.params(),
        "first_day": scope.period.start,
        "end_day": scope.period.end,
    }
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)  # our own SQL text; every value is a parameter
        rows = await cur.fetchall()
    if tick is not None:
        tick()  # the CLI's progress bar
    return rows


def _targets(scope: Scope) -> list[TargetOut]:
    return [
        TargetOut(
            priority=p.value,
            measure=m.value,
            tier=n,
            within_s=scope.targets.tier(p, m, n).within_s,
            goal_pct=float(scope.targets.tier(p, m, n).goal_pct),
        )
        for p in PRIORITIES
        for m in Measure
        for n in (1, 2)
    ]


def _group(row: dict[str, Any], cells: _Cells) -> Group:
    counted = int(row["counted"])
    deployed = int(row["deployed"])
    return Group(
        dimension=row["dimension"],
        value=row["value"],
        alarms=cells.count(int(row["alarms"])),
        test_calls=cells.count(int(row["test_calls"])),
        cancelled=cells.count(int(row["cancelled"])),
        false_alarms=cells.count(int(row["false_alarms"])),
        counted=cells.count(counted),
        deployed=cells.count(deployed),
        answered=cells.count(int(row["answered"])),
        arrived=cells.count(int(row["arrived"])),
        resolved=cells.count(int(row["resolved"])),
        accept=cells.durations(row, "accept", int(row["answered"])),
        arrive=cells.durations(row, "arrive", int(row["arrived"])),
        attend=cells.durations(row, "attend", int(row["arrived"])),
        resolve=cells.durations(row, "resolve", int(row["resolved"])),
        answer_within=[cells.within(n, int(row[f"answer_met_{n}"]), counted) for n in (1, 2)],
        attend_within=[cells.within(n, int(row[f"attend_met_{n}"]), deployed) for n in (1, 2)],
    )


async def response(
    conn: Conn, scope: Scope, *, suppress: bool = False, tick: Tick = None
) -> ResponseReport:
    """Counts, durations and within-target shares, overall and split by priority, kind,
    night/day and week."""
    cells = _Cells(suppress)
    rows = await _rows(conn, sql.FIGURES, scope, tick)
    hist = await _rows(conn, sql.ACCEPT_HISTOGRAM, scope, tick)
    groups = [_group(r, cells) for r in rows]
    if not any(g.dimension == "all" for g in groups):  # no alarms: still one overall row
        groups.insert(0, _group(_empty_row(), cells))
    return ResponseReport(
        head=head(scope, suppress),
        targets=_targets(scope),
        groups=groups,
        accept_histogram=[
            HistogramBar(minute=int(h["minute"]), alarms=cells.count(int(h["alarms"])))
            for h in hist
        ],
    )


def _empty_row() -> dict[str, Any]:
    row: dict[str, Any] = {"dimension": "all", "value": "all"}
    for k in ("alarms", "test_calls", "cancelled", "false_alarms", "counted", "deployed"):
        row[k] = 0
    for k in ("answered", "arrived", "resolved"):
        row[k] = 0
    for m in sql.MEASURES:
        for s in ("p50", "p90", "p95", "max"):
            row[f"{m}_{s}"] = None
    for k in ("answer_met_1", "answer_met_2", "attend_met_1", "attend_met_2"):
        row[k] = 0
    return row


async def kpi_pack(
    conn: Conn, scope: Scope, *, suppress: bool = False, carers: bool = True, tick: Tick = None
) -> KpiPack:
    """The quarterly pack (Lewisham 6.2, Dorset R-table). ``carers=False`` withholds which
    carer had a waking night (commissioners never see carer identities)."""
    cells = _Cells(suppress)
    (k,) = await _rows(conn, sql.KPI, scope, tick)
    kinds = await _rows(conn, sql.KINDS, scope, tick)
    nights = await _rows(conn, sql.WAKING_NIGHTS, scope, tick)
    faults = await _rows(conn, sql.FAULTS, scope, tick)
    callouts = int(k["emergency_callouts"])
    return KpiPack(
        head=head(scope, suppress),
        alarms=cells.count(int(k["alarms"])),
        by_kind=[
            KindCount(
                kind=r["kind"],
                alarms=cells.count(int(r["alarms"])),
                counted=cells.count(int(r["counted"])),
            )
            for r in kinds
        ],
        falls=cells.count(int(k["falls"])),
        falls_with_ambulance=cells.count(int(k["falls_with_ambulance"])),
        ambulance=cells.count(int(k["ambulance"])),
        hospital_admissions=cells.count(int(k["hospital_admissions"])),
        unable_to_gain_access=cells.count(int(k["unable_to_gain_access"])),
        emergency_callouts=cells.count(callouts),
        callouts_within=[cells.within(n, int(k[f"callouts_met_{n}"]), callouts) for n in (1, 2)],
        callouts_within_24h=cells.within(0, int(k["callouts_within_24h"]), callouts),
        waking_nights=[
            WakingNight(
                night=r["night"],
                carer_id=r["carer_id"] if carers else None,
                disturbances=int(r["disturbances"]),
            )
            for r in nights
        ],
        faults=[
            FaultRow(
                code=r["code"],
                faults=cells.count(int(r["faults"])),
                mended=cells.count(int(r["mended"])),
                mend_p50_s=_num(r["mend_p50_s"]),
                mend_max_s=_num(r["mend_max_s"]),
            )
            for r in faults
        ],
    )


async def notifiable(conn: Conn, scope: Scope, tick: Tick = None) -> NotifiableList:
    """Events the council must be told of, each with the working day it is due by."""
    rows = await _rows(conn, sql.NOTIFIABLE, scope, tick)
    events = []
    for r in rows:
        when: datetime = r["resolved_at"] or r["raised_at"]
        day = when.astimezone(scope.tz).date()
        events.append(
            NotifiableEvent(
                alarm_id=r["alarm_id"],
                category=r["category"],
                client_ref=r["client_ref"],
                kind=r["kind"],
                priority=r["priority"],
                outcome=r["outcome"],
                raised_at=r["raised_at"],
                resolved_at=r["resolved_at"],
                local_day=day,
                notify_by=next_working_day(day),
            )
        )
    return NotifiableList(head=head(scope), events=events)


async def visits(conn: Conn, scope: Scope, tick: Tick = None) -> VisitReturn:
    """Thurrock schedule 3: call-outs per client per week."""
    rows = await _rows(conn, sql.VISITS, scope, tick)
    return VisitReturn(
        head=head(scope),
        rows=[
            VisitRow(
                client_ref=r["client_ref"],
                week_start=r["week"],
                actual=int(r["actual"]),
                frustrated=int(r["frustrated"]),
                cancelled=int(r["cancelled"]),
                missed=int(r["missed"]),
                # Every call-out is unplanned: none was in the commissioned schedule.
                extra=int(r["callouts"]),
                visits=int(r["visits"]),
                duration_s=float(r["duration_s"]),
                last_day=r["last_day"],
            )
            for r in rows
        ],
    )
