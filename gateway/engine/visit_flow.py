"""Planned visits inside the engine: the core's hooks call in here. Pure, like the core.

The night's rules are ``gateway.engine.visits`` (late, contact, critical, missed, cancel); this
module feeds them from the engine's inputs and ticks and turns what they say into commands:
control-room alerts (``visit_late``, ``visit_contact_due``, ``visit_missed``,
``visit_pulled_away``), a ``carer_non_arrival`` alarm for a critical visit nobody reached, a
``visit_result`` answer to the carer, and a ``visit_events`` row for every step.

Routing counts planned work: a carer whose run is checked in to a visit is busy. A P2/P3 alarm
skips them (the decision record says ``on_visit <visit_id>``); a P0/P1 may still take them, and
the visit they leave (or the run's next visit due within ``PULL_HORIZON``) is pulled away with
the alarm's id, so its late and contact rules carry the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from devices.events import EventKind, Priority
from devices.scheme import Scheme
from devices.visits import VisitSchedule
from gateway.engine import alarms, lifecycle
from gateway.engine import visits as V
from gateway.engine.model import (
    Alarm,
    AlarmState,
    Command,
    NotifyControlRoom,
    RecordVisit,
    VisitActionIn,
    VisitControlIn,
    VisitOp,
    VisitResult,
)
from gateway.engine.routing import Candidate
from responders.protocol import VisitAction

if TYPE_CHECKING:
    from gateway.engine.core import Core, _Tx

# A run's next planned visit counts as the one a P0/P1 takes its carer from when it is due
# within this long; a visit hours away is not yet affected.
PULL_HORIZON = timedelta(minutes=30)
# Not a device's namespace: non-arrival alarm ids never collide with event alarms.
VISIT_ALARM_NAMESPACE = uuid.UUID("3c1f5e0a-7b9d-4c2e-8f61-2a4d9e7b5c13")

# Control-room priority of each visit alert.
ALERT_PRIORITY = {
    "visit_late": Priority.P2,
    "visit_contact_due": Priority.P2,
    "visit_missed": Priority.P2,
    "visit_pulled_away": Priority.P3,
}


def rules(schedule: VisitSchedule, scheme: Scheme) -> V.Rules:
    return V.Rules(schedule.late_alert_min, schedule.contact_min, scheme.tz)


def runs_of(scheme: Scheme, carer_id: str) -> set[str]:
    """The runs a carer's rota lines name (any time of the week)."""
    return {s.run for s in scheme.rota if s.carer == carer_id and s.run}


def run_of(scheme: Scheme, carer_id: str, now: datetime) -> str | None:
    """The run the carer is on now: the shift on duty, else their only run."""
    on = {s.run for s in scheme.shifts_at(now) if s.carer == carer_id and s.run}
    if len(on) == 1:
        return next(iter(on))
    any_run = runs_of(scheme, carer_id)
    return next(iter(any_run)) if len(any_run) == 1 else None


# ---- the plan ---------------------------------------------------------------------------------


def _row(
    plan: V.NightPlan,
    v: V.Visit,
    step: str,
    at: datetime,
    *,
    carer: str | None = None,
    alarm_id: str | None = None,
    **detail: Any,
) -> RecordVisit:
    return RecordVisit(
        plan.scheme,
        plan.night,
        v.visit_id,
        v.run,
        v.client,
        step,
        at,
        v.agreed_at,
        carer,
        alarm_id,
        detail,
    )


# Changes may be made this many nights ahead (the Council cancels by noon the working day
# before, Thurrock 6.4.3); a plan for a future night is built when a change names it.
AHEAD = timedelta(days=28)


def live_plan(core: Core, tx: _Tx, scheme_id: str) -> V.NightPlan | None:
    """The live night's plan (``visits.plan_night``), if built."""
    scheme = core.schemes[scheme_id]
    return tx.plan_map().get(V.plan_key(scheme_id, V.plan_night(tx.now, scheme.tz)))


def ensure_plan(
    core: Core, tx: _Tx, scheme_id: str, night: date | None = None
) -> V.NightPlan | None:
    """The plan for ``night`` (default: the live night), built from the schedule if it is
    not held yet. None: the scheme has no schedule, or the night is past or too far ahead."""
    schedule = core.schedules.get(scheme_id)
    if schedule is None:
        return None
    scheme = core.schemes[scheme_id]
    live = V.plan_night(tx.now, scheme.tz)
    night = night or live
    plan = tx.plan_map().get(V.plan_key(scheme_id, night))
    if plan is not None:
        return plan
    if night < live or night > live + AHEAD:
        return None  # a past night is never planned afresh (it would alert a whole night)
    plan = V.NightPlan(scheme_id, night, V.night_plan(schedule, night, scheme.tz))
    for vid in sorted(plan.visits, key=lambda k: (plan.visits[k].agreed_at, k)):
        v = plan.visits[vid]
        tx.cmds.append(_row(plan, v, "planned", tx.now, **_plan_detail(v)))
    tx.put_plan(plan)
    return plan


def _plan_detail(v: V.Visit) -> dict[str, Any]:
    """What schedule 3 needs of a visit's plan, on its ``planned``/``extra`` row."""
    return {
        "service": v.service,
        "level": v.level,
        "minutes": v.minutes,
        "window_min": v.window_min,
        "double": v.double,
        "critical": v.critical,
    }


def _end(
    core: Core, tx: _Tx, plan: V.NightPlan, schedule: VisitSchedule, at: datetime
) -> V.NightPlan:
    scheme = core.schemes[plan.scheme]
    visits, effects = V.step(plan.visits, V.EndOfNight(at), rules(schedule, scheme))
    plan = replace(plan, visits=visits, ended=True)
    tx.put_plan(plan)
    _effects(core, tx, plan, effects)
    return plan


def on_tick(core: Core, tx: _Tx, judge: datetime | None = None) -> None:
    """Late, contact, critical and end-of-night rules for every scheme with a schedule, judged
    at ``judge`` (how far ingest has got; default now): what is still queued inside the
    gateway may be exactly the check-in that makes the visit on time."""
    at = tx.now if judge is None else min(judge, tx.now)
    for sid, schedule in core.schedules.items():
        scheme = core.schemes[sid]
        live = V.plan_night(tx.now, scheme.tz)
        for key, old in sorted(tx.plan_map().items()):
            if old.scheme != sid or old.night >= live:
                continue
            if not old.ended:
                if at < V.end_of_night(old.night, scheme.tz):
                    continue  # check-ins from before 07:00 may still be queued
                # Its visits ended at 07:00 (or the gateway was away then): close it now.
                _end(core, tx, old, schedule, at)
            elif old.night < live - timedelta(days=1):
                tx.drop_plan(key)  # the record is in visit_events; memory keeps one night
        plan = ensure_plan(core, tx, sid, live)
        if plan is None or plan.ended:
            continue
        visits, effects = V.step(plan.visits, V.Tick(at), rules(schedule, scheme))
        if effects:
            plan = replace(plan, visits=visits)
            tx.put_plan(plan)
            _effects(core, tx, plan, effects)


def _alert(plan: V.NightPlan, v: V.Visit, code: str, message: str, alarm_id: str | None) -> Command:
    return NotifyControlRoom(
        plan.scheme,
        ALERT_PRIORITY[code],
        code,
        message,
        alarm_id,
        {
            "visit_id": v.visit_id,
            "run": v.run,
            "client": v.client,
            "agreed_at": v.agreed_at.isoformat(),
        },
    )


def _effects(core: Core, tx: _Tx, plan: V.NightPlan, effects: list[V.Effect]) -> None:
    for e in effects:
        v = plan.visits.get(e.visit_id)
        if v is None:
            continue
        match e:
            case V.LateVisit():
                why = f" ({e.reason})" if e.reason else ""
                tx.cmds.append(
                    _alert(
                        plan,
                        v,
                        "visit_late",
                        f"visit {v.visit_id} on {v.run} not checked in, {e.minutes_late} min"
                        f" after the agreed time{why}",
                        v.pulled_away,
                    )
                )
                tx.cmds.append(
                    _row(
                        plan,
                        v,
                        "late_alert",
                        tx.now,
                        alarm_id=v.pulled_away,
                        minutes_late=e.minutes_late,
                        reason=e.reason,
                    )
                )
            case V.ContactTask():
                tx.cmds.append(
                    _alert(
                        plan,
                        v,
                        "visit_contact_due",
                        f"visit {v.visit_id} on {v.run} still not checked in: contact the"
                        " person now (Thurrock 6.6.1), then record the contact",
                        v.pulled_away,
                    )
                )
                tx.cmds.append(_row(plan, v, "contact_due", tx.now, alarm_id=v.pulled_away))
            case V.NonArrival():
                alarm_id = _non_arrival(core, tx, plan, v)
                tx.cmds.append(_row(plan, v, "non_arrival", tx.now, alarm_id=alarm_id))
            case V.Missed():
                tx.cmds.append(
                    _alert(
                        plan,
                        v,
                        "visit_missed",
                        f"visit {v.visit_id} on {v.run} was never checked in: missed",
                        v.pulled_away,
                    )
                )
                tx.cmds.append(_row(plan, v, "missed", tx.now, alarm_id=v.pulled_away))
            case V.Refused():
                pass  # ticks and the end of night refuse nothing


def _non_arrival(core: Core, tx: _Tx, plan: V.NightPlan, v: V.Visit) -> str:
    """Open a P1 carer non-arrival alarm for the visit's client, routed like any alarm."""
    scheme = core.schemes[plan.scheme]
    resident = scheme.resident(v.client)
    # One alarm per visit and agreed time: a moved visit judged afresh gets its own.
    key = f"{plan.scheme}/{v.visit_id}/{v.agreed_at.isoformat()}"
    alarm_id = str(uuid.uuid5(VISIT_ALARM_NAMESPACE, key))
    if alarm_id in tx.alarm_map():
        return alarm_id
    a = Alarm(
        alarm_id=alarm_id,
        scheme=plan.scheme,
        kind=EventKind.CARER_NON_ARRIVAL.value,
        priority=Priority.P1,
        state=AlarmState.RAISED,
        opened_at=tx.now,
        received_at=tx.now,
        last_at=tx.now,
        resident_ref=v.client,
        flat_id=resident.flat if resident else None,
        double_handed=v.double,
        chain=lifecycle.chain_for(core.config.chain, scheme),
        reason=f"time-critical visit {v.visit_id} not checked in by the end of its window",
    )
    alarms.open_alarm(core, tx, a, None, visit_id=v.visit_id, run=v.run)
    return alarm_id


# ---- a carer's visit actions -----------------------------------------------------------------


def _answer(tx: _Tx, inp: VisitActionIn, ok: bool, reason: str | None) -> None:
    tx.cmds.append(
        VisitResult(inp.scheme, inp.carer_id, inp.visit_action_id, inp.visit_id, ok, reason)
    )


def on_action(core: Core, tx: _Tx, inp: VisitActionIn) -> None:
    """A check-in, check-out, frustrated visit or contact from a handset or the page."""
    scheme = core.schemes.get(inp.scheme)
    if scheme is None:
        return
    # The night is the one live when the gateway received the message, not when the engine
    # got to it: a check-in at 06:59 applied after 07:00 belongs to the night that ended.
    plan = ensure_plan(core, tx, inp.scheme, V.plan_night(inp.at, scheme.tz))
    if inp.action == VisitAction.CHECK_OUT.value:
        # A visit begun before 07:00 is checked out of last night's plan.
        prev = tx.plan_map().get(V.plan_key(inp.scheme, V.night_of(inp.at, scheme.tz)))
        held = prev.visits.get(inp.visit_id) if prev is not None else None
        if prev is not None and held is not None and held.status is V.VisitStatus.CHECKED_IN:
            plan = prev
    v = plan.visits.get(inp.visit_id) if plan is not None else None
    if plan is None or v is None:
        _answer(tx, inp, False, "unknown_visit")
        return
    if v.run not in runs_of(scheme, inp.carer_id):
        _answer(tx, inp, False, "not_on_run")
        tx.cmds.append(
            _row(plan, v, "refused", tx.now, carer=inp.carer_id, action=inp.action,
                 reason="not_on_run")
        )  # fmt: skip
        return
    action = VisitAction(inp.action)
    if action is VisitAction.CHECK_IN and v.status is V.VisitStatus.CHECKED_IN:
        # The run's second carer arriving with the first: one visit, already begun.
        _answer(tx, inp, True, "already checked in")
        return
    step_in: V.Input
    match action:
        case VisitAction.CHECK_IN:
            step_in = V.CheckIn(v.visit_id, inp.carer_id, inp.at)
        case VisitAction.CHECK_OUT:
            step_in = V.CheckOut(v.visit_id, inp.carer_id, inp.at)
        case VisitAction.FRUSTRATED:
            step_in = V.Frustrate(v.visit_id, inp.reason or "frustrated", inp.at)
        case VisitAction.CONTACTED:
            step_in = V.Contacted(v.visit_id, inp.at)
    schedule = core.schedules[inp.scheme]
    visits, effects = V.step(plan.visits, step_in, rules(schedule, scheme))
    refused = next((e for e in effects if isinstance(e, V.Refused)), None)
    if refused is not None:
        _answer(tx, inp, False, refused.reason)
        tx.cmds.append(
            _row(plan, v, "refused", tx.now, carer=inp.carer_id, action=inp.action,
                 reason=refused.reason)
        )  # fmt: skip
        return
    plan = replace(plan, visits=visits)
    tx.put_plan(plan)
    new = plan.visits[v.visit_id]
    detail: dict[str, Any] = {"note_len": inp.note_len} if inp.note_len else {}
    match action:
        case VisitAction.CHECK_IN:
            late = (inp.at - new.agreed_at).total_seconds() / 60
            punct = V.punctuality(replace(new, checked_in_at=inp.at))
            step = "checked_in"
            detail |= {"minutes_late": max(0, int(late)), "punctuality": punct}
            if v.pulled_away:
                detail["after_pulled_away"] = v.pulled_away
        case VisitAction.CHECK_OUT:
            step = "checked_out"
            if new.checked_in_at is not None:
                detail["minutes"] = int((inp.at - new.checked_in_at).total_seconds() // 60)
        case VisitAction.FRUSTRATED:
            step = "frustrated"
            detail["reason"] = inp.reason
        case VisitAction.CONTACTED:
            step = "contacted"
            detail["by"] = inp.carer_id
    _answer(tx, inp, True, None)
    tx.cmds.append(_row(plan, new, step, inp.at, carer=inp.carer_id, **detail))
    if action is not VisitAction.CONTACTED:
        _at_the_door(core, tx, scheme, new)


def _at_the_door(core: Core, tx: _Tx, scheme: Scheme, v: V.Visit) -> None:
    """A run that checked in, out or was turned away is at the client's home: the nearest
    alarm is judged from there, as after arriving at an alarm."""
    resident = scheme.resident(v.client)
    if resident is None or scheme.flat(resident.flat) is None:
        return
    for s in scheme.shifts_at(tx.now):
        if s.run != v.run:
            continue
        c = tx.carer_map().get(f"{scheme.id}/{s.carer}")
        if c is not None and c.position.flat != resident.flat:
            pos = replace(c.position, flat=resident.flat, x=None, y=None)
            tx.put_carer(replace(c, position=pos))


# ---- the control room's changes --------------------------------------------------------------


def control_input(plan: V.NightPlan | None, inp: VisitControlIn) -> V.Input | str:
    """The rules' input for an operator's change, or why it cannot be one."""
    if inp.op is VisitOp.EXTRA:
        if inp.agreed_at is None or inp.run is None or inp.client is None or not inp.minutes:
            return "an extra visit needs run, client, agreed_at and minutes"
        return V.AddExtra(
            V.Visit(
                visit_id=inp.visit_id,
                run=inp.run,
                client=inp.client,
                agreed_at=inp.agreed_at,
                window_min=inp.window_min,
                minutes=inp.minutes,
                double=inp.double,
                critical=inp.critical,
                service=inp.service,
                level=inp.level,
            )
        )
    if plan is None or inp.visit_id not in plan.visits:
        return f"no visit {inp.visit_id} tonight"
    match inp.op:
        case VisitOp.CANCEL:
            by = V.CancelledBy(inp.cancelled_by or "person")
            return V.Cancel(inp.visit_id, by, inp.at, inp.reason)
        case VisitOp.MOVE:
            if inp.agreed_at is None:
                return "a move needs the new agreed_at"
            return V.Move(inp.visit_id, inp.agreed_at)
        case VisitOp.CONTACTED:
            return V.Contacted(inp.visit_id, inp.at)
    return f"not a visit change: {inp.op}"


def check_control(plan: V.NightPlan | None, inp: VisitControlIn, rules_: V.Rules) -> str | None:
    """Would the change apply to the plan as it stands? None if so, else why not (the API
    answers 409 with it; the engine checks again when it applies the change)."""
    step_in = control_input(plan, inp)
    if isinstance(step_in, str):
        return step_in
    visits: Mapping[str, V.Visit] = plan.visits if plan is not None else {}
    _, effects = V.step(visits, step_in, rules_)
    refused = next((e for e in effects if isinstance(e, V.Refused)), None)
    return refused.reason if refused is not None else None


def already(plan: V.NightPlan | None, inp: VisitControlIn) -> bool:
    """Is the night already where the change wants it (a retry, or two operators at once)?
    The API then answers "already" and journals nothing, as for alarm actions."""
    v = plan.visits.get(inp.visit_id) if plan is not None else None
    if v is None:
        return False
    match inp.op:
        case VisitOp.CANCEL:
            return v.status is V.VisitStatus.CANCELLED
        case VisitOp.MOVE:
            return v.status is V.VisitStatus.PLANNED and v.agreed_at == inp.agreed_at
        case VisitOp.CONTACTED:
            return v.contacted_at is not None
        case VisitOp.EXTRA:
            return v.extra and (v.run, v.client, v.agreed_at, v.minutes) == (
                inp.run,
                inp.client,
                inp.agreed_at,
                inp.minutes,
            )
    return False


def on_control(core: Core, tx: _Tx, inp: VisitControlIn) -> None:
    scheme = core.schemes.get(inp.scheme)
    schedule = core.schedules.get(inp.scheme)
    if scheme is None or schedule is None:
        return
    plan = ensure_plan(core, tx, inp.scheme, inp.night)
    step_in = control_input(plan, inp)
    why: str | None = step_in if isinstance(step_in, str) else None
    if plan is None:
        why = why or "that night is past or too far ahead"
    if why is None and isinstance(step_in, V.AddExtra):
        if step_in.visit.run not in {s.run for s in scheme.rota if s.run}:
            why = f"no rota line has run {step_in.visit.run}"
        elif scheme.resident(step_in.visit.client) is None:
            why = f"no resident has client_ref {step_in.visit.client}"
    if why is None and plan is not None and not isinstance(step_in, str):
        visits, effects = V.step(plan.visits, step_in, rules(schedule, scheme))
        refused = next((e for e in effects if isinstance(e, V.Refused)), None)
        if refused is None:
            old = plan.visits.get(inp.visit_id)
            plan = replace(plan, visits=visits)
            tx.put_plan(plan)
            _record_change(tx, plan, inp, old, plan.visits[inp.visit_id])
            return
        why = refused.reason
    tx.cmds.append(
        NotifyControlRoom(
            inp.scheme,
            Priority.P3,
            "visit_change_refused",
            f"{inp.op.value} of visit {inp.visit_id} by {inp.by} not applied: {why}",
        )
    )
    old = plan.visits.get(inp.visit_id) if plan is not None else None
    if plan is not None and old is not None:
        tx.cmds.append(_row(plan, old, "refused", tx.now, op=inp.op.value, by=inp.by, reason=why))


def _record_change(
    tx: _Tx, plan: V.NightPlan, inp: VisitControlIn, old: V.Visit | None, new: V.Visit
) -> None:
    detail: dict[str, Any] = {"by": inp.by}
    match inp.op:
        case VisitOp.CANCEL:
            detail |= {"cancelled_by": inp.cancelled_by or "person", "reason": new.reason}
            if new.status is V.VisitStatus.FRUSTRATED:
                # The person cancelled after the agreed time: frustrated, not cancelled.
                tx.cmds.append(_row(plan, new, "frustrated", tx.now, **detail))
                return
            detail["late_notice"] = new.late_notice
            tx.cmds.append(_row(plan, new, "cancelled", tx.now, **detail))
        case VisitOp.MOVE:
            if old is not None:
                detail["from"] = old.agreed_at.isoformat()
            tx.cmds.append(_row(plan, new, "moved", tx.now, **detail))
        case VisitOp.CONTACTED:
            if inp.note_len:
                detail["note_len"] = inp.note_len
            tx.cmds.append(_row(plan, new, "contacted", tx.now, **detail))
        case VisitOp.EXTRA:
            tx.cmds.append(_row(plan, new, "extra", tx.now, **detail, **_plan_detail(new)))


# ---- routing ---------------------------------------------------------------------------------


def carers_on_visits(core: Core, tx: _Tx, scheme_id: str) -> dict[str, str]:
    """carer id -> the visit their run is checked in to, now."""
    plan = live_plan(core, tx, scheme_id)
    if plan is None:
        return {}
    scheme = core.schemes[scheme_id]
    out: dict[str, str] = {}
    for v in plan.visits.values():
        if v.status is not V.VisitStatus.CHECKED_IN:
            continue
        # A run is a pair working together: both are at the visit.
        for s in scheme.rota:
            if s.run == v.run and s.carer not in out and run_of(scheme, s.carer, tx.now) == v.run:
                out[s.carer] = v.visit_id
        if v.carer is not None:
            out[v.carer] = v.visit_id
    return out


def filter_candidates(
    core: Core, tx: _Tx, a: Alarm, cands: list[Candidate]
) -> tuple[list[Candidate], dict[str, str]]:
    """Routing's candidates with planned work counted: (candidates, carer -> why skipped)."""
    busy = carers_on_visits(core, tx, a.scheme)
    if not busy:
        return cands, {}
    if a.priority in (Priority.P0, Priority.P1):
        # They may be taken, but a free carer comes first. (sorted is stable.)
        return sorted(cands, key=lambda c: (not c.eligible, c.carer_id in busy)), {}
    skipped: dict[str, str] = {}
    out: list[Candidate] = []
    for c in cands:
        if c.eligible and c.carer_id in busy:
            why = f"on_visit {busy[c.carer_id]}"
            skipped[c.carer_id] = why
            out.append(Candidate(c.carer_id, False, why))
        else:
            out.append(c)
    return sorted(out, key=lambda c: not c.eligible), skipped


def candidate_record(c: Candidate, skipped: Mapping[str, str]) -> dict[str, object]:
    out = c.as_record()
    if c.carer_id in skipped:
        out["skipped"] = skipped[c.carer_id]
    return out


def on_taken(core: Core, tx: _Tx, a: Alarm, carer_id: str) -> None:
    """A carer accepted an alarm: a P0/P1 takes them off their run's visit (pulled away)."""
    if a.priority not in (Priority.P0, Priority.P1) or a.kind == EventKind.CARER_NON_ARRIVAL:
        return
    schedule = core.schedules.get(a.scheme)
    plan = live_plan(core, tx, a.scheme) if schedule is not None else None
    if schedule is None or plan is None or plan.ended:
        return
    scheme = core.schemes[a.scheme]
    run = run_of(scheme, carer_id, tx.now)
    if run is None:
        return
    mine = [v for v in plan.visits.values() if v.run == run]
    current = next((v for v in mine if v.status is V.VisitStatus.CHECKED_IN), None)
    if current is None:
        due = [
            v
            for v in mine
            if v.status is V.VisitStatus.PLANNED and v.agreed_at <= tx.now + PULL_HORIZON
        ]
        current = min(due, key=lambda v: (v.agreed_at, v.visit_id), default=None)
    if current is None or current.pulled_away == a.alarm_id:
        return  # nothing due, or the pair's other carer already took it to this alarm
    visits, effects = V.step(
        plan.visits, V.PulledAway(current.visit_id, a.alarm_id), rules(schedule, scheme)
    )
    if any(isinstance(e, V.Refused) for e in effects):
        return
    plan = replace(plan, visits=visits)
    tx.put_plan(plan)
    v = plan.visits[current.visit_id]
    was = current.status.value
    tx.cmds.append(
        _alert(
            plan,
            v,
            "visit_pulled_away",
            f"{carer_id} of {run} taken to {a.priority.value} alarm {a.alarm_id[:8]};"
            f" visit {v.visit_id} ({was}) will be late",
            a.alarm_id,
        )
    )
    tx.cmds.append(
        _row(plan, v, "pulled_away", tx.now, carer=carer_id, alarm_id=a.alarm_id, was=was)
    )
