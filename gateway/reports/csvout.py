"""The councils' returns as CSV: flat views of the report models, one header row, UTF-8,
RFC 4180 quoting. Column meanings are in docs/reports.md."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from gateway.reports.models import (
    Durations,
    KpiPack,
    NotifiableList,
    ReportHead,
    ResponseReport,
    Schedule3Return,
    Schedule3Row,
    VisitPunctuality,
    VisitReturn,
    VisitRow,
    Within,
)


def _text(rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def _dur(d: Durations) -> list[Any]:
    return [d.p50, d.p90, d.p95, d.max]


def _within(w: Within) -> list[Any]:
    return [w.met, w.of, w.pct]


RESPONSE_HEADER = [
    "scheme",
    "period",
    "first_day",
    "last_day",
    "dimension",
    "value",
    "alarms",
    "test_calls",
    "cancelled",
    "false_alarms",
    "counted",
    "deployed",
    "answered",
    "arrived",
    "resolved",
    *(
        f"{m}_{s}_s"
        for m in ("accept", "arrive", "attend", "resolve")
        for s in ("p50", "p90", "p95", "max")
    ),
    *(f"answer_tier{n}_{s}" for n in (1, 2) for s in ("met", "of", "pct")),
    *(f"attend_tier{n}_{s}" for n in (1, 2) for s in ("met", "of", "pct")),
]


def _period(h: ReportHead) -> list[Any]:
    return [h.scheme, h.period.label, h.period.first_day, h.period.last_day]


PUNCTUALITY_ITEMS = (
    "visits",
    "checked_in",
    "on_time",
    "late_under_15",
    "late_15_to_30",
    "late_over_30",
    "not_checked_in",
)


def _punctuality_rows(head: ReportHead, p: VisitPunctuality) -> list[list[Any]]:
    """Planned visits' punctuality as rows of the response return: dimension
    ``visit_punctuality``, the bucket as value, the count in ``counted`` (nothing else)."""
    blank = [None] * (len(RESPONSE_HEADER) - 11)
    return [
        [*_period(head), "visit_punctuality", k, None, None, None, None, getattr(p, k), *blank]
        for k in PUNCTUALITY_ITEMS
    ]


def response_csv(r: ResponseReport) -> str:
    """The monthly response return: one row per group (all, priority, kind, night, week),
    then the planned visits' punctuality where the scheme has a visit schedule."""
    rows: list[list[Any]] = [RESPONSE_HEADER]
    for g in r.groups:
        rows.append(
            [
                *_period(r.head),
                g.dimension,
                g.value,
                g.alarms,
                g.test_calls,
                g.cancelled,
                g.false_alarms,
                g.counted,
                g.deployed,
                g.answered,
                g.arrived,
                g.resolved,
                *_dur(g.accept),
                *_dur(g.arrive),
                *_dur(g.attend),
                *_dur(g.resolve),
                *(v for w in g.answer_within for v in _within(w)),
                *(v for w in g.attend_within for v in _within(w)),
            ]
        )
    if r.visit_punctuality is not None:
        rows += _punctuality_rows(r.head, r.visit_punctuality)
    return _text(rows)


def kpi_csv(k: KpiPack) -> str:
    """The quarterly KPI pack, long form: one measure per row (section, item, value)."""
    p = _period(k.head)
    rows: list[list[Any]] = [
        ["scheme", "period", "first_day", "last_day", "section", "item", "value"]
    ]

    def add(section: str, item: str, value: Any) -> None:
        rows.append([*p, section, item, value])

    add("alarms", "all", k.alarms)
    for kc in k.by_kind:
        add("alarms_by_kind", kc.kind, kc.alarms)
    add("incidents", "falls", k.falls)
    add("incidents", "falls_with_ambulance", k.falls_with_ambulance)
    add("incidents", "ambulance", k.ambulance)
    add("incidents", "hospital_admissions", k.hospital_admissions)
    add("incidents", "unable_to_gain_access", k.unable_to_gain_access)
    add("emergency_callouts", "all", k.emergency_callouts)
    for w in k.callouts_within:
        add("emergency_callouts", f"attended_within_tier{w.tier}", w.met)
        add("emergency_callouts", f"attended_within_tier{w.tier}_pct", w.pct)
    add("emergency_callouts", "attended_within_24h", k.callouts_within_24h.met)
    add("emergency_callouts", "attended_within_24h_pct", k.callouts_within_24h.pct)
    add("sleep_in", "waking_nights", len(k.waking_nights))
    for n in k.waking_nights:
        add("sleep_in", f"waking_night {n.night.isoformat()}", n.disturbances)
    for f in k.faults:
        add("device_faults", f"{f.code} faults", f.faults)
        add("device_faults", f"{f.code} mended", f.mended)
        add("device_faults", f"{f.code} mend_p50_s", f.mend_p50_s)
        add("device_faults", f"{f.code} mend_max_s", f.mend_max_s)
    return _text(rows)


NOTIFIABLE_HEADER = [
    "notify_by",
    "event_day",
    "category",
    "client_ref",
    "alarm_id",
    "kind",
    "priority",
    "outcome",
    "raised_at",
    "resolved_at",
]


def notifiable_csv(n: NotifiableList) -> str:
    rows: list[list[Any]] = [NOTIFIABLE_HEADER]
    for e in n.events:
        rows.append(
            [
                e.notify_by,
                e.local_day,
                e.category,
                e.client_ref,
                e.alarm_id,
                e.kind,
                e.priority,
                e.outcome,
                e.raised_at.isoformat(),
                e.resolved_at.isoformat() if e.resolved_at else None,
            ]
        )
    return _text(rows)


# Thurrock schedule 3's fields, in its order.
VISITS_HEADER = [
    "Service",
    "Service Level Type",
    "Client Reference",
    "Start Date",
    "Actual Quantity",
    "Frustrated Quantity",
    "Cancelled Quantity",
    "Missed Quantity",
    "Extra Quantity",
    "Number of Visits",
    "Call Duration (minutes)",
    "End Date",
    "Comments",
]


def _quantities(r: VisitRow | Schedule3Row) -> list[int]:
    """Schedule 3's quantity columns, Actual to Number of Visits."""
    return [r.actual, r.frustrated, r.cancelled, r.missed, r.extra, r.visits]


def visits_csv(v: VisitReturn) -> str:
    rows: list[list[Any]] = [VISITS_HEADER]
    for r in v.rows:
        rows.append(
            [
                "Out of hours emergency response",
                "Emergency call-out",
                r.client_ref,
                r.week_start,
                *_quantities(r),
                round(r.duration_s / 60, 1),
                r.last_day,
                "call-outs from alarms and Careline; planned calls are not in this system",
            ]
        )
    return _text(rows)


# Thurrock schedule 3 for planned visits (docs/visits.md), in the schedule's order.
# The same fields; a week's first day is its "Week Start" here.
SCHEDULE3_HEADER = [*VISITS_HEADER[:3], "Week Start", *VISITS_HEADER[4:]]


def schedule3_csv(s: Schedule3Return) -> str:
    """One row per client, service level type and week; no names, only client references."""
    rows: list[list[Any]] = [SCHEDULE3_HEADER]
    for r in s.rows:
        rows.append(
            [
                r.service,
                r.level,
                r.client_ref,
                r.week_start,
                *_quantities(r),
                r.call_minutes,
                r.week_end,
                r.comments,
            ]
        )
    return _text(rows)
