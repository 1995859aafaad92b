"""The planned visits' part of the verdict, from what the gateway recorded in ``visit_events``
(and ``alarm_events`` for the non-arrival alarms) for this run's ``gateway_id``, judged
against tonight's schedule file. ``judge`` is pure; ``fetch`` does the SQL.

Product checks (always judged; each is a fact of the gateway's own stamps, whatever the
machine did): every visit was planned; every visit still open when its late alert fell due
was alerted, and the contact task raised for the non-critical ones; every time-critical visit
still open at the end of its window opened a non-arrival alarm that is in the alarm record;
every visit still open at the end of the night was marked missed; and the visits due in the
run were made (checked in, frustrated or cancelled), which a run that never turns up fails.
Timing checks (judged only where the run kept time): the alerts and alarms came within
``alert_within_s`` of falling due, no visit checked in before its deadline was alerted late,
and the emergency call-outs were on site within the scheme's target alongside the visits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from simulator.scenario import ExpectVisits
from simulator.timekeeping import Intervals
from simulator.visits import PlannedVisit

CLOSING = frozenset({"checked_in", "frustrated", "cancelled"})

# (visit_id, step, at, agreed_at, alarm_id, carer_id, journal_seq)
VisitRow = tuple[str, str, datetime, datetime, str | None, str | None, int]


@dataclass
class VisitFacts:
    night: date  # tonight, as the gateway names it (the local date the night began)
    plan: list[PlannedVisit]
    late_alert_min: int
    contact_min: int
    end_of_night: datetime
    expect: ExpectVisits
    # The end of the scenario's window (its start + duration_s): visits are judged due up to
    # here, not up to the end of the drain, whose length depends on the machine and the speed
    # (so the same seed gives the same checks at any speed).
    played_until: datetime | None = None
    rows: list[VisitRow] = field(default_factory=list)
    raised_alarms: dict[str, str | None] = field(default_factory=dict)  # alarm id -> kind


def fetch(dsn: str, gateway_id: str, facts: VisitFacts, until: datetime) -> VisitFacts:
    """This run's steps of tonight's visits up to ``until`` (the gateway plans the next night
    too, once this one ends), and the alarms it raised (for the non-arrivals)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT visit_id, step, at, agreed_at, alarm_id::text, carer_id, journal_seq"
            " FROM visit_events WHERE gateway_id = %s AND night = %s AND at <= %s"
            " ORDER BY at, journal_seq",
            (gateway_id, facts.night, until),
        ).fetchall()
        raised = conn.execute(
            "SELECT alarm_id::text, detail->>'kind' FROM alarm_events"
            " WHERE gateway_id = %s AND step = 'raised'",
            (gateway_id,),
        ).fetchall()
    facts.rows = [(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows]
    facts.raised_alarms = {r[0]: r[1] for r in raised}
    return facts


def _check(name: str, bad: list[Any], want: str, limit: int = 0) -> dict[str, Any]:
    ok = len(bad) <= limit
    got: Any = len(bad) if ok else {"n": len(bad), "first": bad[:8]}
    return {"check": name, "status": "pass" if ok else "fail", "ok": ok, "got": got, "want": want}


Span = tuple[datetime | None, datetime | None]  # open from (None: the start) until (None: still)


def open_spans(rows: list[VisitRow]) -> list[Span]:
    """When the visit was open (planned, nobody there), from its steps in journal order: a
    check-in, frustration or cancellation closes it; a P0/P1 alarm that takes the carer off a
    checked-in visit (``pulled_away`` after the check-in) opens it again, and its late, contact
    and critical rules run again from there (docs/visits.md)."""
    spans: list[Span] = []
    start: datetime | None = None
    is_open = True
    for _vid, step, at, *_rest in rows:
        if step in CLOSING and is_open:
            spans.append((start, at))
            is_open = False
        elif step == "pulled_away" and not is_open:
            start, is_open = at, True
    if is_open:
        spans.append((start, None))
    return spans


def open_after(spans: list[Span], t: datetime, tol: timedelta) -> datetime | None:
    """The first moment from ``t`` on at which the visit was open for longer than ``tol``
    (a close within ``tol`` of it is a race with the engine's tick: not counted)."""
    for start, stop in spans:
        since = t if start is None or start < t else start
        if stop is None or stop >= since + tol:
            return since
    return None


def judge(
    f: VisitFacts,
    end: datetime,
    stalls: Intervals,
    callout_site: list[tuple[bool, bool]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(product checks, timing checks, figures) for the run that ended at ``end``."""
    from simulator.verdict import _timed, judge_share  # the same rules as the alarms'

    tol = timedelta(seconds=f.expect.alert_within_s)
    tol_s = tol.total_seconds()
    drained = end  # steps are read up to here (the missed marks at 07:00 come in the drain)
    end = min(end, f.played_until) if f.played_until is not None else end
    steps: dict[str, dict[str, list[VisitRow]]] = defaultdict(lambda: defaultdict(list))
    for row in f.rows:
        steps[row[0]][row[1]].append(row)

    def first(vid: str, name: str, since: datetime | None = None) -> VisitRow | None:
        found = [r for r in steps[vid].get(name, []) if since is None or r[2] >= since]
        return min(found, key=lambda r: (r[2], r[6])) if found else None

    unplanned, unalerted, no_contact, no_alarm, unmissed = [], [], [], [], []
    not_made: list[dict[str, str]] = []
    alert_times: list[tuple[bool, bool]] = []
    alarm_times: list[tuple[bool, bool]] = []
    false_alerts: list[tuple[bool, bool]] = []
    late_n = 0
    due_by_run: dict[str, int] = defaultdict(int)
    there_by_run: dict[str, int] = defaultdict(int)
    night = f.end_of_night  # alerts fall due only within the night; then it is missed
    for v in f.plan:
        vid = v.visit_id
        if not steps[vid].get("planned"):
            unplanned.append(vid)
        rows = sorted((r for rs in steps[vid].values() for r in rs), key=lambda r: (r[2], r[6]))
        agreed = rows[-1][3] if rows else v.agreed_at  # a moved visit: its new time
        spans = open_spans(rows)
        due = agreed + timedelta(minutes=f.late_alert_min)
        late_from = open_after(spans, due, tol) if due < night else None
        if late_from is not None and late_from + tol <= end:
            late_n += 1
            alert = first(vid, "late_alert", late_from - tol)
            if alert is None:
                unalerted.append(vid)
            else:
                alert_times.append(_timed(late_from, alert[2], end, tol_s, stalls))
        alert = first(vid, "late_alert")
        first_close = spans[0][1]
        if alert is not None and first_close is not None and first_close + tol < due:
            reopened = len(spans) > 1 and spans[1][0] is not None and spans[1][0] <= alert[2]
            if not reopened:
                # Checked in well before the deadline, never pulled away, yet alerted late:
                # wrong, unless the machine held the check-in back past the engine's tick.
                false_alerts.append(_timed(first_close, None, alert[2], 0.0, stalls))
        contact_due = agreed + timedelta(minutes=f.contact_min)
        contact_from = open_after(spans, contact_due, tol) if contact_due < night else None
        if not v.critical and contact_from is not None and contact_from + tol <= end:
            if first(vid, "contact_due", contact_from - tol) is None:
                no_contact.append(vid)
        window_end = agreed + timedelta(minutes=v.window_min)
        miss_from = open_after(spans, window_end, tol) if window_end < night else None
        if v.critical and miss_from is not None and miss_from + tol <= end:
            na = first(vid, "non_arrival")
            if na is None or na[4] is None or na[4] not in f.raised_alarms:
                no_alarm.append({"visit_id": vid, "alarm_id": na[4] if na else None})
            else:
                alarm_times.append(_timed(miss_from, na[2], end, tol_s, stalls))
        still_open = spans[-1][1] is None
        if night + tol <= drained and still_open and not steps[vid].get("missed"):
            unmissed.append(vid)
        if window_end + tol <= end:
            due_by_run[v.run] += 1
            if still_open:
                not_made.append({"visit_id": vid, "run": v.run})
            if any(steps[vid].get(s) for s in ("checked_in", "frustrated")):
                there_by_run[v.run] += 1
    # A run that had visits due and was never there for one of them did not turn up: the
    # no-show the verdict must catch, whatever the night's load (docs/scenarios.md).
    no_show = [
        {"run": r, "visits_due": n} for r, n in sorted(due_by_run.items()) if not there_by_run[r]
    ]
    e = f.expect
    product = [
        _check("visits planned", unplanned, "every visit of tonight's schedule"),
        _check("late visits alerted", unalerted, "a late alert for every visit late by the bar"),
        _check("contact tasks raised", no_contact, "a contact task for every late non-critical"),
        _check(
            "critical misses opened an alarm",
            no_alarm,
            "a non-arrival alarm (in alarm_events) for every time-critical miss",
        ),
        _check("missed at end of night", unmissed, "every visit still open at 07:00"),
        _check("runs turned up", no_show, "every run with visits due was at one of them"),
    ]
    if e.max_not_made is not None:
        product.append(
            _check("visits made", not_made, f"<= {e.max_not_made} not made", e.max_not_made)
        )
    bar = f"within {e.alert_within_s:g} s"
    timing = [
        judge_share("late alerts in time", alert_times, 100.0, f"100% {bar} of falling due"),
        judge_share("non-arrival alarms in time", alarm_times, 100.0, f"100% {bar} of the window"),
        judge_share("no late alert after an on-time check-in", false_alerts, 100.0, "none"),
    ]
    if e.callouts_on_site_within_target_pct is not None:
        m = e.callouts_on_site_within_target_pct
        timing.append(judge_share("call-outs on site within target", callout_site, m, f">= {m}%"))
    by_run: dict[str, int] = defaultdict(int)
    for x in not_made:
        by_run[x["run"]] += 1
    figures = {
        "visits_planned": len(f.plan),
        "visits_late_by_bar": late_n,
        "visits_steps": {
            s: sum(len(steps[v][s]) for v in steps) for s in sorted({r[1] for r in f.rows})
        },
        "visits_not_made": len(not_made),
        "visits_not_made_by_run": dict(sorted(by_run.items())),
        "non_arrival_alarms": sum(len(steps[v].get("non_arrival", [])) for v in steps),
    }
    return product, timing, figures
