"""The verdict: what the simulator sent, checked against what the gateway recorded in the
database (device_events, careline_callouts, alarm_events, dead_letters, notifications) for this
run's ``gateway_id``. ``compute`` is pure; ``fetch`` does the SQL.

It has two parts (docs/scenarios.md):

- **The product**: invariants that hold at any speed and are always judged (nothing lost, no
  duplicate page, every alarm closed within the drain, every lifecycle step in order, dead
  letters as sent), then timing checks (accepted within N s, on site within target), judged
  only where the run kept time.
- **The run's health**: how late the simulator's own waits ran, how far the gateway's stamps
  fell behind, and what that means for the timing checks.

Exit codes: 0 pass, 1 product failure, 2 run not valid (the machine, not the product).
"""

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
from simulator.timekeeping import STALL_MIN_S, Intervals
from simulator.visit_verdict import VisitFacts
from simulator.visit_verdict import judge as judge_visits

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
    acked: set[str] = field(default_factory=set)  # keys the broker acknowledged at least once
    bad: Counter[str] = field(default_factory=Counter)
    resent: int = 0
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


@dataclass
class RunFacts:
    """What the runner measured about the run itself (not the product)."""

    speed: float = 1.0
    slip: dict[str, Any] = field(default_factory=dict)  # SlipMeter.summary()
    stalls: Intervals = field(default_factory=Intervals)  # the simulator's, scheme epoch s
    api: dict[str, Any] = field(default_factory=dict)  # GatewayWatch.summary()
    receipts: dict[str, Any] = field(default_factory=dict)  # Outbox.summary()
    publish: dict[str, int] = field(default_factory=dict)
    task_failures: list[str] = field(default_factory=list)
    drain_timed_out: bool = False
    behind: str | None = None  # the gateway had not recorded everything when judged
    jobs: list[tuple[float, float]] = field(default_factory=list)  # carers' busy stretches


Step = tuple[str, str, datetime, str, str | None, int]  # alarm, step, at, priority, carer, seq


@dataclass
class DbFacts:
    events: Counter[str]  # event_id -> rows
    callouts: Counter[str]  # callout_id -> rows
    steps: list[Step]
    dead_letters: Counter[str]
    notifications: Counter[str]  # "kind:code" -> n
    lag_p50_s: float | None = None  # received_at - occurred_at of this run's events
    lag_max_s: float | None = None
    # (start, end) scheme epoch seconds: device/handset input occurred -> the gateway received
    # it, and received -> the engine recorded the step it caused.
    ingest_lags: list[tuple[float, float]] = field(default_factory=list)
    engine_lags: list[tuple[float, float]] = field(default_factory=list)


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
            "SELECT alarm_id::text, step, at, priority, carer_id, journal_seq FROM alarm_events"
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
        # Only lags of at least a stall are kept: the rest is ordinary pipeline time.
        ingest = conn.execute(
            "SELECT extract(epoch FROM occurred_at)::float8,"
            " extract(epoch FROM received_at)::float8 FROM device_events WHERE gateway_id = %s"
            " AND received_at - occurred_at >= make_interval(secs => %s)"
            " UNION ALL SELECT extract(epoch FROM occurred_at)::float8,"
            " extract(epoch FROM received_at)::float8 FROM alarm_events WHERE gateway_id = %s"
            " AND received_at - occurred_at >= make_interval(secs => %s)",
            (gateway_id, STALL_MIN_S, gateway_id, STALL_MIN_S),
        ).fetchall()
        engine = conn.execute(
            "SELECT extract(epoch FROM received_at)::float8, extract(epoch FROM at)::float8"
            " FROM alarm_events WHERE gateway_id = %s"
            " AND at - received_at >= make_interval(secs => %s)",
            (gateway_id, STALL_MIN_S),
        ).fetchall()
    return DbFacts(
        Counter({r[0]: r[1] for r in ev}),
        Counter({r[0]: r[1] for r in co}),
        [(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in steps],
        Counter({r[0]: r[1] for r in dl}),
        Counter({f"{r[0]}:{r[1]}": r[2] for r in no}),
        float(lag[0]) if lag and lag[0] is not None else None,
        float(lag[1]) if lag and lag[1] is not None else None,
        [(float(a), float(b)) for a, b in ingest],
        [(float(a), float(b)) for a, b in engine],
    )


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, ``q`` in 0..100."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def _share(n: int, d: int) -> float | None:
    return round(100.0 * n / d, 1) if d else None


# ---- invariants ---------------------------------------------------------------------------

TERMINAL = frozenset({"resolved", "cancelled"})
# A gateway this far behind (scheme seconds) has processed inputs hours of scheme time after
# they happened: what depends on *when* it processed them (a door opened "at night", an alarm
# closed "within the drain") is then the machine's doing, not the product's.
FAR_BEHIND_S = 1800.0


def lifecycle_faults(rows: list[Step]) -> list[str]:
    """What is out of order in one alarm's steps (in journal order): it starts with
    ``raised``; nothing follows its close; an accept follows an offer; an arrival follows an
    accept; a resolution follows an arrival."""
    faults: list[str] = []
    seen: set[str] = set()
    closed: str | None = None
    for i, (_a, step, _at, _p, _c, _seq) in enumerate(rows):
        if i == 0 and step != "raised":
            faults.append(f"starts with {step}")
        if closed is not None:
            faults.append(f"{step} after {closed}")
        if step in ACCEPT_STEPS and not seen & {"offered", "escalated"}:
            faults.append(f"{step} before any offer")
        if step == "arrived" and not seen & set(ACCEPT_STEPS):
            faults.append("arrived before accepted")
        if step == "resolved" and "arrived" not in seen:
            faults.append("resolved before arrived")
        if step in TERMINAL:
            closed = step
        seen.add(step)
    return faults


# ---- the run's health ---------------------------------------------------------------------


def gateway_stalls(db: DbFacts) -> Intervals:
    """Scheme time in which the gateway was behind: an input waited at least a stall before
    it was received, or a received input waited that long for the engine."""
    out = Intervals()
    for a, b in db.ingest_lags + db.engine_lags:
        out.add(a, b)
    return out


def _ts(at: datetime) -> float:
    return at.timestamp()


def judge_share(
    name: str, results: list[tuple[bool, bool]], min_pct: float, want: str
) -> dict[str, Any]:
    """A "share within N s" check from per-alarm (ok, unknown) results. ``unknown`` is a miss
    the machine's stalls may explain. The check is judged only if those could not change it:
    the machine only ever adds delay, so a hit stays a hit."""
    n = len(results)
    hits = sum(ok for ok, _u in results)
    unknown = sum(u for ok, u in results if not ok)
    lo = 100.0 * hits / n if n else 100.0
    hi = 100.0 * (hits + unknown) / n if n else 100.0
    if lo >= min_pct:
        status = "pass"
    elif hi < min_pct:
        status = "fail"
    else:
        status = "not judged"
    got: Any = round(lo, 1)
    if unknown:
        got = f"{lo:.1f}-{hi:.1f}% ({unknown} of {n} decided by the machine)"
    return {"check": name, "status": status, "ok": _ok(status), "got": got, "want": want}


def _ok(status: str) -> bool | None:
    return {"pass": True, "fail": False}.get(status)


def compute(
    sim: SimRecord,
    db: DbFacts,
    scheme: Scheme,
    expect: Expect,
    sleep_in: frozenset[str] = frozenset(),
    run: RunFacts | None = None,
    until: datetime | None = None,
    expect_drain_s: float = 3600.0,
    visits: VisitFacts | None = None,
) -> dict[str, Any]:
    """The verdict from what was sent and what the database holds; ``expect_drain_s`` is the
    scenario's drain (scheme seconds), the slack an alarm open at the end had. ``visits``:
    tonight's planned visits and their records, for a scenario that plays a visit schedule."""
    run = run or RunFacts()
    by_alarm: dict[str, list[Step]] = defaultdict(list)
    for row in db.steps:
        by_alarm[row[0]].append(row)
    own = {a.alarm_id: a for a in sim.alarms}
    # Merged presses: attribute each "merged" step to an alarm's resident, then to the
    # simulator's alarm events for that resident that did not open an alarm of their own.
    merged_left: Counter[str] = Counter()
    for alarm_id, rows in by_alarm.items():
        first = own.get(alarm_id)
        if first is not None:
            merged_left[first.resident or alarm_id] += sum(1 for r in rows if r[1] == "merged")
    lost: list[dict[str, Any]] = []
    undelivered: list[dict[str, Any]] = []
    opened: list[str] = []
    merged = 0
    for a in sorted(sim.alarms, key=lambda a: a.at):
        recorded = db.callouts[a.key] if a.callout else db.events[a.key]
        if not recorded:
            entry = {"key": a.key, "kind": a.kind, "why": "not in the database"}
            # Never acknowledged by the broker: the machine did not deliver it, so it says
            # nothing about the product (and makes the run not valid).
            (lost if a.key in sim.acked or not sim.acked else undelivered).append(entry)
            continue
        if a.alarm_id in by_alarm:
            opened.append(a.alarm_id)
        elif merged_left[a.resident or ""] > 0:
            merged_left[a.resident or ""] -= 1
            merged += 1
        else:
            lost.append({"key": a.key, "kind": a.kind, "why": "recorded but no alarm"})
    end = until or max((r[2] for r in db.steps), default=None)
    stalls = Intervals()
    stalls.update(run.stalls)
    gw = gateway_stalls(db)
    stalls.update(gw)
    far_behind = gw.longest() > FAR_BEHIND_S
    machine_lost = [x for x in lost if far_behind and x["why"] == "recorded but no alarm"]
    lost = [x for x in lost if x not in machine_lost]
    accept_s: list[float] = []
    arrive_s: list[float] = []
    accept_results: list[tuple[bool, bool]] = []
    site_results: list[tuple[bool, bool]] = []
    callout_site: list[tuple[bool, bool]] = []
    accepted = arrived = resolved = cancelled = escalated = 0
    order_faults: list[dict[str, Any]] = []
    bar = expect.accepted_within.seconds if expect.accepted_within else None
    for alarm_id in opened:
        rows = by_alarm[alarm_id]
        faults = lifecycle_faults(sorted(rows, key=lambda r: r[5]))
        if faults:
            order_faults.append({"alarm_id": alarm_id, "faults": faults[:5]})
        raised = next((r for r in rows if r[1] == "raised"), rows[0])
        acc = next((r for r in rows if r[1] in ACCEPT_STEPS), None)
        arr = next((r for r in rows if r[1] == "arrived"), None)
        was_cancelled = any(r[1] == "cancelled" for r in rows)
        accepted += acc is not None
        arrived += arr is not None
        resolved += any(r[1] == "resolved" for r in rows)
        cancelled += was_cancelled
        escalated += any(r[1] == "escalated" for r in rows)
        if acc is not None:
            accept_s.append((acc[2] - raised[2]).total_seconds())
        if arr is not None:
            arrive_s.append((arr[2] - raised[2]).total_seconds())
        since = _waited_since(raised[2], run.jobs)
        if bar is not None:
            got = _timed(raised[2], acc[2] if acc else None, end, bar, stalls, since)
            accept_results.append(got)
        target = scheme.targets.get(raised[3])  # type: ignore[call-overload]
        if target is not None and not was_cancelled:
            got = _timed(raised[2], arr[2] if arr else None, end, target, stalls, since)
            site_results.append(got)
            if own[alarm_id].callout:
                callout_site.append(got)
    gw_only = [k for k, rows in by_alarm.items() if k not in own and rows[0][1] == "raised"]
    double_recorded = sum(1 for n in db.events.values() if n > 1)
    per_carer: dict[str, set[str]] = defaultdict(set)
    for alarm_id, step, _at, _p, carer, _seq in db.steps:
        if step in ACCEPT_STEPS and carer:
            per_carer[carer].add(alarm_id)
    # An alarm still open at the end, whose time since it was raised the machine ate more of
    # than the whole drain allows, was not closed because the simulated carers (or the gateway)
    # were starved: "closed within the drain" cannot be judged on it.
    unclosed_by_machine = 0
    for alarm_id in opened:
        rows = by_alarm[alarm_id]
        if end is not None and not any(r[1] in TERMINAL for r in rows):
            raised_at = next((r for r in rows if r[1] == "raised"), rows[0])[2]
            if stalls.measure(_ts(raised_at), _ts(end)) >= expect_drain_s:
                unclosed_by_machine += 1
    site_hits = sum(ok for ok, _u in site_results)
    v: dict[str, Any] = {
        "alarms_raised": len(sim.alarms),
        "alarms_known": len(sim.alarms) - len(lost) - len(undelivered) - len(machine_lost),
        "alarms_opened": len(opened),
        "merged_into_open": merged,
        "accepted": accepted,
        "arrived": arrived,
        "resolved": resolved,
        "cancelled": cancelled,
        "escalated": escalated,
        "lost": len(lost),
        "lost_detail": lost[:20],
        "undelivered": len(undelivered),
        "decided_by_machine": machine_lost[:20],
        "gateway_far_behind": far_behind,
        "unclosed_by_machine": unclosed_by_machine,
        "undelivered_detail": undelivered[:20],
        "duplicate_pages": len(sim.duplicates),
        "duplicate_detail": sim.duplicates[:20],
        "double_recorded_events": double_recorded,
        "lifecycle_out_of_order": len(order_faults),
        "lifecycle_detail": order_faults[:20],
        "gateway_only_alarms": len(gw_only),
        "accept_p50_s": pct(accept_s, 50),
        "accept_p90_s": pct(accept_s, 90),
        "arrive_p50_s": pct(arrive_s, 50),
        "arrive_p90_s": pct(arrive_s, 90),
        "on_site_within_target_pct": _share(site_hits, len(site_results)),
        "resolved_pct": _share(resolved, len(opened)),
        "closed_pct": _share(resolved + cancelled, len(opened)),
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
        n = sum(ok for ok, _u in accept_results)
        v["accepted_within_pct"] = _share(n, len(opened))
    product = product_checks(v, expect)
    v["product_checks"] = product
    timing = timing_checks(v, expect, accept_results, site_results, stalls)
    if visits is not None and end is not None:
        vp, vt, figures = judge_visits(visits, end, stalls, callout_site)
        v.update(figures)
        if v.get("gateway_far_behind"):
            for c in vt:
                if c["status"] == "fail":
                    c.update(status="not judged", ok=None)
        product += vp
        v["product_checks"] = product
        timing += vt
    v["run"] = run_health(v, run, gw, stalls, timing)
    v["timing_checks"] = timing
    v["checks"] = product + timing
    product_ok = all(c["ok"] is not False for c in product)
    timing_failed = any(c["status"] == "fail" for c in timing)
    if not product_ok or timing_failed:
        v["outcome"], v["exit_code"] = "product failure", 1
    elif v["run"]["problems"]:
        v["outcome"], v["exit_code"] = "run not valid", 2
    else:
        v["outcome"], v["exit_code"] = "pass", 0
    v["passed"] = v["exit_code"] == 0
    return v


def _waited_since(raised: datetime, jobs: list[tuple[float, float]]) -> float:
    """Where an alarm's window of machine influence starts: when it was raised, or earlier,
    at the start of any carer's job still running then. A stall inside that job kept the
    carer from this alarm as surely as a stall after it was raised."""
    t = _ts(raised)
    return min([start for start, stop in jobs if start <= t <= stop] + [t])


def _timed(
    raised: datetime,
    done: datetime | None,
    end: datetime | None,
    bar: float,
    stalls: Intervals,
    since: float | None = None,
) -> tuple[bool, bool]:
    """(within ``bar``, a miss the stalls may explain) for one alarm's step after ``raised``;
    stalls count from ``since`` (see ``_waited_since``)."""
    stop = done or end
    if stop is None:
        return False, False
    took = (stop - raised).total_seconds()
    if done is not None and took <= bar:
        return True, False
    lost_to_machine = stalls.measure(_ts(raised) if since is None else since, _ts(stop))
    return False, took - lost_to_machine <= bar


def product_checks(v: dict[str, Any], e: Expect) -> list[dict[str, Any]]:
    """Invariants: judged at any speed, however the machine ran."""
    out: list[dict[str, Any]] = []

    def check(name: str, ok: bool, got: Any, want: str) -> None:
        status = "pass" if ok else "fail"
        out.append({"check": name, "status": status, "ok": bool(ok), "got": got, "want": want})

    lost = e.lost if e.lost is not None else 0
    check("lost alarms", v["lost"] <= lost, v["lost"], f"<= {lost}")
    dup_bar = e.duplicate_pages if e.duplicate_pages is not None else 0
    dup = v["duplicate_pages"] + v["double_recorded_events"]
    check("duplicate pages", dup <= dup_bar, dup, f"<= {dup_bar}")
    want = e.min_resolved_pct if e.min_resolved_pct is not None else 100.0
    got = v["closed_pct"] if v["closed_pct"] is not None else 100.0
    check("closed within the drain %", got >= want, got, f">= {want}")
    if got < want and (v.get("gateway_far_behind") or v.get("unclosed_by_machine")):
        # Every alarm left open could have been closed but for the machine: see compute().
        closable = 100.0 * (v["resolved"] + v["cancelled"] + v["unclosed_by_machine"])
        if v.get("gateway_far_behind") or closable / max(v["alarms_opened"], 1) >= want:
            out[-1].update(status="not judged", ok=None)
    n = v["lifecycle_out_of_order"]
    check("lifecycle steps in order", n == 0, n, "0 alarms out of order")
    if e.dead_letters_match:
        sent, db = v["dead_letters_sent"], v["dead_letters_db"]
        check("dead letters match", sent == db, db, f"== {sent}")
    return out


def timing_checks(
    v: dict[str, Any],
    e: Expect,
    accept_results: list[tuple[bool, bool]],
    site_results: list[tuple[bool, bool]],
    stalls: Intervals,
) -> list[dict[str, Any]]:
    """Checks on how fast things happened: judged only where the machine kept time."""
    out: list[dict[str, Any]] = []
    if e.accepted_within is not None:
        want = f">= {e.accepted_within.min_pct}% within {e.accepted_within.seconds:g} s"
        out.append(judge_share("accepted in time", accept_results, e.accepted_within.min_pct, want))
    if e.min_on_site_within_target_pct is not None:
        m = e.min_on_site_within_target_pct
        out.append(judge_share("on site within target %", site_results, m, f">= {m}"))
    if e.max_no_contact_alerts is not None:
        n, m = v["no_contact_alerts"], e.max_no_contact_alerts
        # A stalled run silences hubs as far as the gateway can tell: a miss is then unknown.
        status = "pass" if n <= m else ("not judged" if len(stalls) else "fail")
        out.append(
            {
                "check": "no-contact alerts",
                "status": status,
                "ok": _ok(status),
                "got": n,
                "want": f"<= {m}",
            }
        )
    if v.get("gateway_far_behind"):
        # A gateway hours behind did not keep time anywhere: no timing result is the product's.
        for c in out:
            if c["status"] == "fail":
                c.update(status="not judged", ok=None)
    return out


def product_checks_not_judged(v: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in v.get("product_checks", []) if c["status"] == "not judged"]


def run_health(
    v: dict[str, Any],
    run: RunFacts,
    gw: Intervals,
    stalls: Intervals,
    timing: list[dict[str, Any]],
) -> dict[str, Any]:
    """The run's own figures, and why (if at all) it is not a valid test of the product."""
    problems: list[str] = []
    slip = run.slip.get("max_slip_real_s", 0.0)
    speed = run.speed
    sim_stalled = run.stalls.measure()
    gw_stalled = gw.measure()
    not_judged = [c["check"] for c in timing if c["status"] == "not judged"]
    summary = (
        f"max clock slip {slip:.2f} s real ({slip * speed:.0f} s scheme) at x{speed:g}; "
        f"stalled scheme time: simulator {sim_stalled:.0f} s, gateway {gw_stalled:.0f} s"
    )
    # Starved: the machine did not keep time or did not deliver. A slower run may do better;
    # a run that could not start or whose simulator failed would not.
    starved = bool(not_judged or v["undelivered"] or run.behind)
    if any(c["status"] == "not judged" for c in v.get("product_checks", [])):
        starved = True
        if not v.get("gateway_far_behind"):
            problems.append(
                f"{v['unclosed_by_machine']} alarms left open had lost more than the drain"
                f" ({stalls.measure():.0f} stalled scheme s in all) to the machine: closed"
                " within the drain is not judged"
            )
    if not_judged:
        problems.append(
            f"the run slipped {slip:.1f} s at x{speed:g} (stalls covered {stalls.measure():.0f}"
            f" scheme s), so these timing checks are not judged: {', '.join(not_judged)}"
        )
    far = [c["check"] for c in product_checks_not_judged(v)]
    if v.get("gateway_far_behind"):
        starved = True
        problems.append(
            f"the gateway fell {gw.longest():.0f} scheme s ({gw.longest() / speed:.0f} real s)"
            f" behind at x{speed:g}: what depends on when it processed its inputs is not judged"
            + (f" ({', '.join(far)}" if far else "")
            + (
                f"; {len(v['decided_by_machine'])} alarms triaged late"
                if v["decided_by_machine"]
                else ""
            )
            + (")" if far else "")
        )
    if v["undelivered"]:
        problems.append(f"{v['undelivered']} alarm messages were never acknowledged by the broker")
    if run.behind:
        problems.append(run.behind)
    if run.task_failures:
        problems.append("simulator tasks failed: " + "; ".join(run.task_failures[:5]))
    return {
        "kept_time": not len(stalls),
        "starved": starved,
        "summary": summary,
        "simulator": run.slip,
        "simulator_stalled_scheme_s": round(sim_stalled, 1),
        "gateway_stalled_scheme_s": round(gw_stalled, 1),
        "gateway_longest_stall_scheme_s": round(gw.longest(), 1),
        "gateway_api": run.api,
        "receipts": run.receipts,
        "publish": run.publish,
        "drain_timed_out": run.drain_timed_out,
        "problems": problems,
    }
