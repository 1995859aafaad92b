"""Engine state <-> JSON, so alarms, carers and deadlines survive a restart exactly.

The shell stores the state as rows of ``engine_state``: ``alarm:<id>``, ``carer:<key>``,
``fault:<key>``, ``offline:<key>`` (no contact), ``mode:<key>`` (test windows),
``visits:<scheme>/<night>`` (a night's planned visits), and one
``misc`` row for the small rest; a pass writes only the rows that changed (``changed_rows``).
``state_to_json`` is the whole state as one document (tests, tools)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from devices.events import Priority
from gateway.engine.model import (
    Alarm,
    AlarmState,
    CarerState,
    CarerStatus,
    Deadline,
    DeadlineKind,
    EscalationChain,
    Offer,
    Outcome,
    Position,
    to_json,
)
from gateway.engine.state import Dirty, EngineState
from gateway.engine.visits import NightPlan, Visit, VisitStatus


def _dt(v: str | None) -> datetime | None:
    return None if v is None else datetime.fromisoformat(v)


def alarm_from_json(d: dict[str, Any]) -> Alarm:
    dl = d.get("deadline")
    return Alarm(
        alarm_id=d["alarm_id"],
        scheme=d["scheme"],
        kind=d["kind"],
        priority=Priority(d["priority"]),
        state=AlarmState(d["state"]),
        opened_at=datetime.fromisoformat(d["opened_at"]),
        received_at=datetime.fromisoformat(d["received_at"]),
        last_at=datetime.fromisoformat(d["last_at"]),
        resident_ref=d.get("resident_ref"),
        flat_id=d.get("flat_id"),
        device_id=d.get("device_id"),
        callout_id=d.get("callout_id"),
        double_handed=d.get("double_handed", False),
        alert_control_room=d.get("alert_control_room", False),
        welfare_check=d.get("welfare_check", False),
        count=d.get("count", 1),
        event_ids=tuple(d.get("event_ids", ())),
        chain=EscalationChain(**d.get("chain", {})),
        offers=tuple(
            Offer(o["offer_id"], o["carer_id"], datetime.fromisoformat(o["sent_at"]), o["role"])
            for o in d.get("offers", ())
        ),
        offers_sent=d.get("offers_sent", 0),
        tried=tuple(d.get("tried", ())),
        accepted_by=tuple(d.get("accepted_by", ())),
        arrived_by=tuple(d.get("arrived_by", ())),
        deadline=None
        if dl is None
        else Deadline(datetime.fromisoformat(dl["due"]), dl["epoch"], DeadlineKind(dl["kind"])),
        epoch=d.get("epoch", 0),
        outcome=Outcome(d["outcome"]) if d.get("outcome") else None,
        note=d.get("note", ""),
        reason=d.get("reason", ""),
        silenced_until=_dt(d.get("silenced_until")),
        acked_by=d.get("acked_by"),
        acked_state=d.get("acked_state"),
        nagged=d.get("nagged", 0),
    )


def carer_from_json(d: dict[str, Any]) -> CarerState:
    return CarerState(
        carer_id=d["carer_id"],
        scheme=d["scheme"],
        logged_in=d.get("logged_in", False),
        handset_seen=_dt(d.get("handset_seen")),
        position=Position(**d.get("position", {})),
        status=CarerStatus(d.get("status", "available")),
        busy_with=d.get("busy_with"),
    )


def visit_from_json(d: dict[str, Any]) -> Visit:
    return Visit(
        visit_id=d["visit_id"],
        run=d["run"],
        client=d["client"],
        agreed_at=datetime.fromisoformat(d["agreed_at"]),
        window_min=int(d["window_min"]),
        minutes=int(d["minutes"]),
        double=bool(d["double"]),
        critical=bool(d["critical"]),
        service=d["service"],
        level=d["level"],
        extra=bool(d.get("extra", False)),
        status=VisitStatus(d.get("status", "planned")),
        checked_in_at=_dt(d.get("checked_in_at")),
        checked_out_at=_dt(d.get("checked_out_at")),
        late_alerted=bool(d.get("late_alerted", False)),
        contact_raised=bool(d.get("contact_raised", False)),
        contacted_at=_dt(d.get("contacted_at")),
        non_arrival_opened=bool(d.get("non_arrival_opened", False)),
        late_notice=bool(d.get("late_notice", False)),
        reason=d.get("reason"),
        pulled_away=d.get("pulled_away"),
        carer=d.get("carer"),
    )


def plan_from_json(d: dict[str, Any]) -> NightPlan:
    return NightPlan(
        scheme=d["scheme"],
        night=date.fromisoformat(d["night"]),
        visits={k: visit_from_json(v) for k, v in d.get("visits", {}).items()},
        ended=bool(d.get("ended", False)),
    )


def state_to_json(state: EngineState) -> dict[str, Any]:
    return {
        "alarms": {k: to_json(a) for k, a in state.alarms.items()},
        "carers": {k: to_json(c) for k, c in state.carers.items()},
        "device_seen": {k: v.isoformat() for k, v in state.device_seen.items()},
        "device_mode": {k: v.isoformat() for k, v in state.device_mode.items()},
        "no_contact": sorted(state.no_contact),
        "silent_handsets": sorted(state.silent_handsets),
        "coverage_alerted": sorted(state.coverage_alerted),
        "disturbances": dict(state.disturbances),
        "lag_alerted": state.lag_alerted,
        "device_faults": {k: v.isoformat() for k, v in state.device_faults.items()},
        "visit_plans": {k: to_json(p) for k, p in state.visit_plans.items()},
    }


def state_from_json(d: dict[str, Any]) -> EngineState:
    return EngineState(
        alarms={k: alarm_from_json(v) for k, v in d.get("alarms", {}).items()},
        carers={k: carer_from_json(v) for k, v in d.get("carers", {}).items()},
        device_seen={k: datetime.fromisoformat(v) for k, v in d.get("device_seen", {}).items()},
        device_mode={k: datetime.fromisoformat(v) for k, v in d.get("device_mode", {}).items()},
        no_contact=frozenset(d.get("no_contact", ())),
        silent_handsets=frozenset(d.get("silent_handsets", ())),
        coverage_alerted=frozenset(d.get("coverage_alerted", ())),
        disturbances={k: int(v) for k, v in d.get("disturbances", {}).items()},
        lag_alerted=bool(d.get("lag_alerted", False)),
        device_faults={k: datetime.fromisoformat(v) for k, v in d.get("device_faults", {}).items()},
        visit_plans={k: plan_from_json(v) for k, v in d.get("visit_plans", {}).items()},
    )


# Kept in rows of their own (one per key), no longer in "misc": they can grow with the estate
# (a power cut takes hundreds of devices offline), and one row each means a pass writes only
# what changed. A "misc" row that still has them is from an older gateway.
PER_KEY_FIELDS = ("device_faults", "no_contact", "device_mode")
MISC_FIELDS = ("silent_handsets", "coverage_alerted", "disturbances", "lag_alerted")


def changed_rows(state: EngineState, dirty: Dirty) -> tuple[dict[str, str], list[str]]:
    """The ``engine_state`` rows to write and to delete for what changed (``dirty``)."""
    upserts: dict[str, str] = {}
    deletes: list[str] = []

    def row(key: str, body: Any) -> None:
        if body is None:
            deletes.append(key)
        else:
            upserts[key] = json.dumps(body)

    for k in dirty.alarms:
        a = state.alarms.get(k)
        row(f"alarm:{k}", None if a is None else to_json(a))
    for k in dirty.carers:
        c = state.carers.get(k)
        row(f"carer:{k}", None if c is None else to_json(c))
    for k in dirty.faults:
        since = state.device_faults.get(k)
        row(f"fault:{k}", None if since is None else since.isoformat())
    for k in dirty.offline:
        row(f"offline:{k}", True if k in state.no_contact else None)
    for k in dirty.modes:
        until = state.device_mode.get(k)
        row(f"mode:{k}", None if until is None else until.isoformat())
    for k in dirty.plans:
        plan = state.visit_plans.get(k)
        row(f"visits:{k}", None if plan is None else to_json(plan))
    if dirty.misc or dirty.faults or dirty.offline or dirty.modes:
        # Rewritten whenever a per-key row is, so an older "misc" row's copies of those
        # fields are gone by the time their rows are the truth.
        row(
            "misc",
            {
                "silent_handsets": sorted(state.silent_handsets),
                "coverage_alerted": sorted(state.coverage_alerted),
                "disturbances": dict(state.disturbances),
                "lag_alerted": state.lag_alerted,
            },
        )
    return upserts, deletes


def state_from_rows(
    rows: Mapping[str, Any],
    carers: Mapping[str, CarerState],
    device_seen: Mapping[str, datetime],
) -> tuple[EngineState, bool]:
    """The state kept as ``engine_state`` rows (``changed_rows``), over the schemes' carers as
    they start (``carers``) and each device's last contact (``device_seen``, from the
    journal). Also whether the rows are in the older layout (to be written again)."""
    alarms: dict[str, Alarm] = {}
    people = dict(carers)
    misc: dict[str, Any] = {}
    faults: dict[str, datetime] = {}
    offline: set[str] = set()
    modes: dict[str, datetime] = {}
    plans: dict[str, NightPlan] = {}
    for key, body in rows.items():
        kind, _, rest = key.partition(":")
        if kind == "alarm":
            a = alarm_from_json(body)
            alarms[a.alarm_id] = a
        elif kind == "carer":
            people[rest] = carer_from_json(body)
        elif kind == "fault":
            faults[rest] = datetime.fromisoformat(body)
        elif kind == "offline":
            offline.add(rest)
        elif kind == "mode":
            modes[rest] = datetime.fromisoformat(body)
        elif kind == "visits":
            plans[rest] = plan_from_json(body)
        elif key == "misc":
            misc = body
    restored = state_from_json({**misc, "alarms": {}, "carers": {}})
    # Alarms in the order they came (ties by id), never the order their rows were written,
    # which follows a set's hash order: a restarted engine works due alarms in that order,
    # and the same journal must replay alike.
    order = sorted(alarms.values(), key=lambda a: (a.received_at, a.opened_at, a.alarm_id))
    state = EngineState(
        alarms={a.alarm_id: a for a in order},
        carers=people,
        device_seen=device_seen,
        device_mode={**restored.device_mode, **modes},
        no_contact=restored.no_contact | offline,
        silent_handsets=restored.silent_handsets,
        coverage_alerted=restored.coverage_alerted,
        disturbances=restored.disturbances,
        lag_alerted=restored.lag_alerted,
        device_faults={**restored.device_faults, **faults},
        visit_plans=plans,
    )
    return state, any(k in misc for k in PER_KEY_FIELDS)
