"""The verdict: what the simulator sent, checked against what the gateway recorded in the
database (device_events, careline_callouts, alarm_events, dead_letters, notifications) for this
run's ``gateway_id``. ``compute`` is pure; ``fetch`` does the SQL."""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from devices.scheme import Scheme
from simulator.scenario import Expect

# The gateway derives alarm ids from what opened them (a protocol fact, copied not imported):
# uuid5(ns, "event/<scheme>/<device_id>/<event_id>") and uuid5(ns, "callout/<scheme>/<callout_id>").
ALARM_NAMESPACE = uuid.UUID("8d0f3a52-61c4-4c1e-9a0e-5b7f0e2d9c44")
ACCEPT_STEPS = ("accepted_one", "accepted")


def event_alarm_id(scheme: str, device_id: str, event_id: str) -> str:
    return str(uuid.uuid5(ALARM_NAMESPACE, f"event/{scheme}/{device_id}/{event_id}"))


def callout_alarm_id(scheme: str, callout_id: str) -> str:
    return str(uuid.uuid5(ALARM_NAMESPACE, f"callout/{scheme}/{callout_id}"))


@dataclass(frozen=True, slots=True)
class SentAlarm:
    key: str  # event id or callout id
    alarm_id: str  # the id the gateway gives it if it opens its own alarm
    resident: str | None
    kind: str
    at: datetime
    callout: bool = False


@dataclass
class SimRecord:
    alarms: list[SentAlarm] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)  # every valid event sent
    bad: Counter[str] = field(default_factory=Counter)
    resent: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


@dataclass
class DbFacts:
    events: Counter[str]  # event_id -> rows
    callouts: Counter[str]  # callout_id -> rows
    steps: list[tuple[str, str, datetime, str, str | None]]  # alarm, step, at, priority, carer
    dead_letters: Counter[str]
    notifications: Counter[str]  # "kind:code" -> n
    lag_p50_s: float | None = None  # received_at - occurred_at of this run's events
    lag_max_s: float | None = None


def fetch(dsn: str, gateway_id: str, sim: SimRecord, until: datetime) -> DbFacts:
    """What the database holds for this run; engine records only up to ``until`` (the end)."""
    ids = [a.key for a in sim.alarms if not a.callout] + sorted(sim.event_ids)
    with psycopg.connect(dsn) as conn:
        ev = conn.execute(
            "SELECT event_id::text, count(*) FROM device_events"
            " WHERE gateway_id = %s AND event_id = ANY(%s::uuid[]) GROUP BY event_id",
            (gateway_id, list(set(ids))),
        ).fetchall()
        co = conn.execute(
            "SELECT callout_id, count(*) FROM careline_callouts WHERE gateway_id = %s"
            " GROUP BY callout_id",
            (gateway_id,),
        ).fetchall()
        steps = conn.execute(
            "SELECT alarm_id::text, step, at, priority, carer_id FROM alarm_events"
            " WHERE gateway_id = %s AND at <= %s ORDER BY at, journal_seq",
            (gateway_id, until),
        ).fetchall()
        dl = conn.execute(
            "SELECT reason, count(*) FROM dead_letters WHERE gateway_id = %s GROUP BY reason",
            (gateway_id,),
        ).fetchall()
        no = conn.execute(
            "SELECT kind, code, count(*) FROM notifications WHERE gateway_id = %s AND at <= %s"
            " GROUP BY kind, code",
            (gateway_id, until),
        ).fetchall()
        lag = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM"
            " received_at - occurred_at)), max(extract(epoch FROM received_at - occurred_at))"
            " FROM device_events WHERE gateway_id = %s",
            (gateway_id,),
        ).fetchone()
    return DbFacts(
        Counter({r[0]: r[1] for r in ev}),
        Counter({r[0]: r[1] for r in co}),
        [(r[0], r[1], r[2], r[3], r[4]) for r in steps],
        Counter({r[0]: r[1] for r in dl}),
        Counter({f"{r[0]}:{r[1]}": r[2] for r in no}),
        float(lag[0]) if lag and lag[0] is not None else None,
        float(lag[1]) if lag and lag[1] is not None else None,
    )


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, ``q`` in 0..100."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def _share(n: int, d: int) -> float | None:
    return round(100.0 * n / d, 1) if d else None


def compute(
    sim: SimRecord,
    db: DbFacts,
    scheme: Scheme,
    expect: Expect,
    sleep_in: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    by_alarm: dict[str, list[tuple[str, datetime, str, str | None]]] = defaultdict(list)
    for alarm_id, step, at, prio, carer in db.steps:
        by_alarm[alarm_id].append((step, at, prio, carer))
    own = {a.alarm_id: a for a in sim.alarms}
    # Merged presses: attribute each "merged" step to an alarm's resident, then to the
    # simulator's alarm events for that resident that did not open an alarm of their own.
    merged_left: Counter[str] = Counter()
    for alarm_id, rows in by_alarm.items():
        first = own.get(alarm_id)
        if first is not None:
            merged_left[first.resident or alarm_id] += sum(1 for r in rows if r[0] == "merged")
    lost: list[dict[str, Any]] = []
    opened: list[str] = []
    merged = 0
    for a in sorted(sim.alarms, key=lambda a: a.at):
        recorded = db.callouts[a.key] if a.callout else db.events[a.key]
        if not recorded:
            lost.append({"key": a.key, "kind": a.kind, "why": "not in the database"})
            continue
        if a.alarm_id in by_alarm:
            opened.append(a.alarm_id)
        elif merged_left[a.resident or ""] > 0:
            merged_left[a.resident or ""] -= 1
            merged += 1
        else:
            lost.append({"key": a.key, "kind": a.kind, "why": "recorded but no alarm"})
    accept_s: list[float] = []
    arrive_s: list[float] = []
    within = total_targets = accepted = arrived = resolved = cancelled = escalated = 0
    for alarm_id in opened:
        rows = by_alarm[alarm_id]
        raised = next((r for r in rows if r[0] == "raised"), rows[0])
        acc = next((r for r in rows if r[0] in ACCEPT_STEPS), None)
        arr = next((r for r in rows if r[0] == "arrived"), None)
        accepted += acc is not None
        arrived += arr is not None
        resolved += any(r[0] == "resolved" for r in rows)
        cancelled += any(r[0] == "cancelled" for r in rows)
        escalated += any(r[0] == "escalated" for r in rows)
        if acc is not None:
            accept_s.append((acc[1] - raised[1]).total_seconds())
        if arr is not None:
            arrive_s.append((arr[1] - raised[1]).total_seconds())
        target = scheme.targets.get(raised[2])  # type: ignore[call-overload]
        if target is not None and not any(r[0] == "cancelled" for r in rows):
            total_targets += 1
            if arr is not None and (arr[1] - raised[1]).total_seconds() <= target:
                within += 1
    gw_only = [k for k, rows in by_alarm.items() if k not in own and rows[0][0] == "raised"]
    double_recorded = sum(1 for n in db.events.values() if n > 1)
    per_carer: dict[str, set[str]] = defaultdict(set)
    for alarm_id, step, _at, _p, carer in db.steps:
        if step in ACCEPT_STEPS and carer:
            per_carer[carer].add(alarm_id)
    v: dict[str, Any] = {
        "alarms_raised": len(sim.alarms),
        "alarms_known": len(sim.alarms) - len(lost),
        "alarms_opened": len(opened),
        "merged_into_open": merged,
        "accepted": accepted,
        "arrived": arrived,
        "resolved": resolved,
        "cancelled": cancelled,
        "escalated": escalated,
        "lost": len(lost),
        "lost_detail": lost[:20],
        "duplicate_pages": len(sim.duplicates),
        "duplicate_detail": sim.duplicates[:20],
        "double_recorded_events": double_recorded,
        "gateway_only_alarms": len(gw_only),
        "accept_p50_s": pct(accept_s, 50),
        "accept_p90_s": pct(accept_s, 90),
        "arrive_p50_s": pct(arrive_s, 50),
        "arrive_p90_s": pct(arrive_s, 90),
        "on_site_within_target_pct": _share(within, total_targets),
        "resolved_pct": _share(resolved, len(opened)),
        "dead_letters_sent": dict(sim.bad),
        "dead_letters_db": dict(db.dead_letters),
        "duplicates_resent": sim.resent,
        "no_contact_alerts": db.notifications.get("technical:no_contact", 0),
        "ingest_lag_p50_s": None if db.lag_p50_s is None else round(db.lag_p50_s, 1),
        "ingest_lag_max_s": None if db.lag_max_s is None else round(db.lag_max_s, 1),
        "notifications": dict(db.notifications),
        "accepts_per_carer": {c: len(s) for c, s in sorted(per_carer.items())},
        "sleep_in_over_two": sorted(c for c in sleep_in if len(per_carer.get(c, ())) > 2),
        "handsets": dict(sim.counts),
        "simulator_errors": sim.errors[:20],
    }
    if expect.accepted_within is not None:
        n = sum(1 for s in accept_s if s <= expect.accepted_within.seconds)
        v["accepted_within_pct"] = _share(n, len(opened))
    v["checks"] = checks(v, expect)
    v["passed"] = all(c["ok"] for c in v["checks"])
    return v


def checks(v: dict[str, Any], e: Expect) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def check(name: str, ok: bool, got: Any, want: str) -> None:
        out.append({"check": name, "ok": bool(ok), "got": got, "want": want})

    if e.lost is not None:
        check("lost alarms", v["lost"] <= e.lost, v["lost"], f"<= {e.lost}")
    if e.duplicate_pages is not None:
        dup = v["duplicate_pages"] + v["double_recorded_events"]
        check("duplicate pages", dup <= e.duplicate_pages, dup, f"<= {e.duplicate_pages}")
    if e.min_resolved_pct is not None:
        got = v["resolved_pct"] if v["resolved_pct"] is not None else 100.0
        check("resolved %", got >= e.min_resolved_pct, got, f">= {e.min_resolved_pct}")
    if e.accepted_within is not None:
        got = v.get("accepted_within_pct")
        got = 100.0 if got is None else got
        want = f">= {e.accepted_within.min_pct}% within {e.accepted_within.seconds:g} s"
        check("accepted in time", got >= e.accepted_within.min_pct, got, want)
    if e.min_on_site_within_target_pct is not None:
        got = v["on_site_within_target_pct"]
        got = 100.0 if got is None else got
        want = f">= {e.min_on_site_within_target_pct}"
        check("on site within target %", got >= e.min_on_site_within_target_pct, got, want)
    if e.dead_letters_match:
        sent, db = v["dead_letters_sent"], v["dead_letters_db"]
        check("dead letters match", sent == db, db, f"== {sent}")
    if e.max_no_contact_alerts is not None:
        n = v["no_contact_alerts"]
        check("no-contact alerts", n <= e.max_no_contact_alerts, n, f"<= {e.max_no_contact_alerts}")
    return out
