"""Engine state <-> JSON, so alarms, carers and deadlines survive a restart exactly."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from devices.events import Priority
from gateway.engine.core import EngineState
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
