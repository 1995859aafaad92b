"""The ``/reports`` page: one self-contained HTML document (inline CSS and SVG; no script, no
font or chart library fetched from anywhere), readable on a laptop and printable to PDF."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from gateway.reports import charts
from gateway.reports.charts import PALETTE, Series
from gateway.reports.models import Group, KpiPack, ResponseReport, Within
from gateway.reports.scope import PeriodKind

CSS = """
:root { font-family: "DejaVu Sans", Arial, sans-serif; color: #1d1d1d; }
body { margin: 1.5rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.15rem; margin-top: 1.5rem; }
.meta { color: #555; margin: 0 0 1rem; }
form { display: flex; gap: .75rem; flex-wrap: wrap; align-items: end; padding: .75rem;
       background: #f3f5f8; border-radius: 6px; }
form label { display: flex; flex-direction: column; font-size: .85rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 1rem; }
figure { margin: 0; border: 1px solid #d8dde5; border-radius: 6px; padding: .5rem; }
figcaption { font-weight: bold; font-size: .95rem; margin-bottom: .25rem; }
svg.chart { width: 100%; height: auto; }
svg .grid { stroke: #e3e6ea; } svg .target { stroke: #2b2b2b; stroke-dasharray: 5 4; }
svg .tick { font-size: 11px; fill: #444; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #d8dde5; padding: .25rem .5rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f5f8; }
.empty { color: #777; font-style: italic; }
.downloads a { margin-right: 1rem; }
@media print {
  form, .downloads { display: none; } body { margin: 0; max-width: none; }
  .charts { grid-template-columns: 1fr 1fr; } figure { break-inside: avoid; }
  svg.chart { width: 100%; }
}
"""


def _n(v: Any) -> str:
    if v is None:
        return "\u2013"
    if isinstance(v, float):
        return f"{round(v, 1):g}"  # display only: JSON and CSV carry the exact value
    return escape(str(v))


def _pct(w: Within) -> str:
    return "\u2013" if w.pct is None else f"{w.pct:g}% ({_n(w.met)}/{_n(w.of)})"


def _groups(report: ResponseReport, dimension: str) -> list[Group]:
    return [g for g in report.groups if g.dimension == dimension]


def _goal(report: ResponseReport, measure: str, tier: int) -> tuple[int, float]:
    t = next(
        t for t in report.targets if t.priority == "P1" and t.measure == measure and t.tier == tier
    )
    return t.within_s, t.goal_pct


def _mins(s: int) -> str:
    return f"{s // 60} min" if s >= 120 else f"{s} s"


def _figure_table(report: ResponseReport) -> str:
    rows = []
    shown = [
        *_groups(report, "all"),
        *_groups(report, "priority"),
        *_groups(report, "night"),
        *_groups(report, "kind"),
    ]
    for g in shown:
        label = "all alarms" if g.dimension == "all" else f"{g.dimension}: {g.value}"
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    escape(label),
                    _n(g.alarms),
                    _n(g.counted),
                    f"{_n(g.test_calls)} / {_n(g.cancelled)} / {_n(g.false_alarms)}",
                    f"{_n(g.accept.p50)} / {_n(g.accept.p90)} / {_n(g.accept.p95)} / "
                    f"{_n(g.accept.max)}",
                    f"{_n(g.attend.p50)} / {_n(g.attend.p90)} / {_n(g.attend.max)}",
                    _pct(g.answer_within[0]),
                    _pct(g.answer_within[1]),
                    _pct(g.attend_within[0]),
                    _pct(g.attend_within[1]),
                )
            )
            + "</tr>"
        )
    a1, _ = _goal(report, "answer", 1)
    a2, _ = _goal(report, "answer", 2)
    d1, _ = _goal(report, "attend", 1)
    d2, _ = _goal(report, "attend", 2)
    head = (
        "<tr><th>group</th><th>alarms</th><th>counted</th><th>test / cancelled / false</th>"
        "<th>accept p50 / p90 / p95 / max (s)</th><th>attend p50 / p90 / max (s)</th>"
        f"<th>answered ≤ {_mins(a1)}</th><th>answered ≤ {_mins(a2)}</th>"
        f"<th>on site ≤ {_mins(d1)}</th><th>on site ≤ {_mins(d2)}</th></tr>"
    )
    return f'<table id="figures"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _kpi_table(pack: KpiPack) -> str:
    items: list[tuple[str, Any]] = [("alarms (less test calls)", pack.alarms)]
    items += [(f"alarms: {k.kind}", k.alarms) for k in pack.by_kind]
    items += [
        ("falls", pack.falls),
        ("falls with an ambulance", pack.falls_with_ambulance),
        ("hospital admissions", pack.hospital_admissions),
        ("unable to gain access", pack.unable_to_gain_access),
        ("emergency call-outs", pack.emergency_callouts),
        ("call-outs on site within tier 1", _pct(pack.callouts_within[0])),
        ("call-outs on site within 24 h (R5)", _pct(pack.callouts_within_24h)),
        ("sleep-in nights that became waking nights", len(pack.waking_nights)),
    ]
    items += [
        (
            f"device faults: {f.code}",
            f"{_n(f.faults)} raised, {_n(f.mended)} mended, median {_n(f.mend_p50_s)} s",
        )
        for f in pack.faults
    ]
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{_n(v)}</td></tr>" for k, v in items)
    return f'<table id="kpi"><tbody>{rows}</tbody></table>'


def _charts(report: ResponseReport) -> list[tuple[str, str]]:
    hist = {h.minute: h.alarms for h in report.accept_histogram}
    minutes = [f"{m}" if m < 10 else "10+" for m in range(11)]
    dist = charts.bars(
        "distribution",
        "Time to accept: counted alarms per minute",
        minutes,
        [Series("alarms", [_f(hist.get(m)) for m in range(11)], PALETTE[0])],
    )
    weeks = _groups(report, "week")
    _, answer_goal = _goal(report, "answer", 1)
    _, attend_goal = _goal(report, "attend", 1)
    trend = charts.lines(
        "weekly-trend",
        "Weekly share within tier-1 targets",
        [g.value[5:] for g in weeks],
        [
            Series("answered in target %", [g.answer_within[0].pct for g in weeks], PALETTE[0]),
            Series("on site in target %", [g.attend_within[0].pct for g in weeks], PALETTE[2]),
        ],
        unit="%",
        targets=[
            (answer_goal, f"answer goal {answer_goal:g}%"),
            (attend_goal, f"on-site goal {attend_goal:g}%"),
        ],
    )
    prios = _groups(report, "priority")
    per_priority = charts.bars(
        "within-target",
        "Within target, by priority",
        [g.value for g in prios],
        [
            Series("answer T1", [g.answer_within[0].pct for g in prios], PALETTE[0]),
            Series("answer T2", [g.answer_within[1].pct for g in prios], PALETTE[1]),
            Series("on site T1", [g.attend_within[0].pct for g in prios], PALETTE[2]),
            Series("on site T2", [g.attend_within[1].pct for g in prios], PALETTE[3]),
        ],
        unit="%",
        top=100.0,
    )
    nd = sorted(_groups(report, "night"), key=lambda g: g.value != "night")
    night_day = charts.bars(
        "night-day",
        "Night against day: time to accept (s)",
        [g.value for g in nd],
        [
            Series("p50", [g.accept.p50 for g in nd], PALETTE[0]),
            Series("p90", [g.accept.p90 for g in nd], PALETTE[1]),
            Series("max", [g.accept.max for g in nd], PALETTE[2]),
        ],
        unit=" s",
    )
    return [
        ("Response-time distribution", dist),
        ("Weekly trend against the targets", trend),
        ("Within target per priority", per_priority),
        ("Night against day", night_day),
    ]


def _f(v: int | None) -> float | None:
    return None if v is None else float(v)


def _form(report: ResponseReport, schemes: Sequence[str]) -> str:
    h = report.head
    opts = "".join(
        f'<option value="{escape(s)}"{" selected" if s == h.scheme else ""}>{escape(s)}</option>'
        for s in schemes
    )
    kinds = "".join(
        f'<option value="{k.value}"{" selected" if k == h.period.kind else ""}>{k.value}</option>'
        for k in PeriodKind
    )
    days = (h.period.last_day - h.period.first_day).days + 1
    return (
        '<form method="get" action="/reports">'
        f'<label>scheme<select name="scheme">{opts}</select></label>'
        f'<label>period<select name="period">{kinds}</select></label>'
        f'<label>day in period<input type="date" name="on" value="{h.period.first_day}"></label>'
        f'<label>custom days<input type="number" name="days" min="1" max="367" value="{days}">'
        "</label>"
        '<label>small cells<select name="suppress_small">'
        f'<option value="false">shown</option><option value="true"'
        f"{' selected' if h.suppressed else ''}>withheld</option></select></label>"
        '<button type="submit">Show</button></form>'
    )


def _downloads(report: ResponseReport) -> str:
    h = report.head
    q = {"period": h.period.kind.value, "on": h.period.first_day.isoformat(), "format": "csv"}
    if h.period.kind is PeriodKind.CUSTOM:
        q["days"] = str((h.period.last_day - h.period.first_day).days + 1)
    links = []
    for kind, label in (
        ("response", "monthly response return (CSV)"),
        ("kpi", "KPI pack (CSV)"),
        ("notifiable", "notifiable events (CSV)"),
        ("visits", "visits per client per week (CSV)"),
    ):
        url = f"/api/v1/reports/{escape(h.scheme)}/{kind}?{escape(urlencode(q))}"
        links.append(f'<a href="{url}">{label}</a>')
    return f'<p class="downloads">{"".join(links)}</p>'


def render(report: ResponseReport, pack: KpiPack, schemes: Sequence[str]) -> str:
    h = report.head
    figures = "".join(
        f"<figure><figcaption>{escape(title)}</figcaption>{svg}</figure>"
        for title, svg in _charts(report)
    )
    everything = _groups(report, "all")[0]
    empty = (
        '<p class="empty">No alarms were raised in this period.</p>'
        if not everything.alarms
        else ""
    )
    return f"""<!doctype html>
<html lang="en-GB"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(h.scheme_name)}: response figures {escape(h.period.label)}</title>
<style>{CSS}</style></head>
<body>
<h1>{escape(h.scheme_name)}: response figures, {escape(h.period.label)}</h1>
<p class="meta">{h.period.first_day} to {h.period.last_day} ({escape(h.period.timezone)});
night {h.night_start} to {h.night_end}; percentiles are percentile_disc; test calls,
cancelled and false alarms are counted apart{"; counts under 5 withheld" if h.suppressed else ""}.
Generated {h.generated_at:%Y-%m-%d %H:%M} UTC.</p>
{_form(report, schemes)}
{_downloads(report)}
{empty}
<h2>Charts</h2>
<div class="charts">{figures}</div>
<h2>Response figures</h2>
{_figure_table(report)}
<h2>Quarterly KPI pack items for this period</h2>
{_kpi_table(pack)}
</body></html>
"""
