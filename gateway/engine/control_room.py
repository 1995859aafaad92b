"""The control room's actions on an alarm (note, acknowledge, silence, resolve, escalate,
assign, accept or arrive for a carer), promoting a test call, and a fault seen to. Each is
checked again here: the alarm may have moved on since the API said yes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from devices.events import Priority
from devices.scheme import Scheme
from gateway.engine import alarms, carer_actions, dispatch, lifecycle, operator, routing
from gateway.engine.model import (
    ActionIn,
    ActionKind,
    Alarm,
    AlarmState,
    CancelOffer,
    DeadlineKind,
    FaultClearIn,
    NotifyControlRoom,
    OperatorIn,
    OperatorOp,
    PromoteIn,
    RaiseTechnical,
    RecordDecision,
)

if TYPE_CHECKING:
    from gateway.engine.core import Core, _Tx


def _refused(tx: _Tx, scheme: str, code: str, message: str, alarm_id: str | None) -> None:
    """The control room is told its instruction was not applied, and why (P3)."""
    tx.cmds.append(NotifyControlRoom(scheme, Priority.P3, code, message, alarm_id))


def on_promote(core: Core, tx: _Tx, p: PromoteIn) -> None:
    """The control room says a test call is real: it is raised and offered at once."""
    a = tx.alarm_map().get(p.alarm_id)
    if a is None or a.scheme != p.scheme or a.state is not AlarmState.TEST_CALL:
        state = "unknown" if a is None or a.scheme != p.scheme else a.state.value
        _refused(
            tx,
            p.scheme,
            "promote_refused",
            f"alarm {p.alarm_id} is not a test call (it is {state}); nothing changed",
            p.alarm_id if a is not None else None,
        )
        return
    a = lifecycle.transition(tx, a, "promoted", None, by=p.by)
    a = replace(a, state=AlarmState.RAISED, reason=f"{a.reason}; promoted from a test call")
    alarms.open_alarm(core, tx, a, None)  # the operator has judged it real: no bed-exit wait


def on_operator(core: Core, tx: _Tx, inp: OperatorIn) -> None:
    """An operator's action, checked again here: the alarm may have moved on since the
    API said yes. A refusal is told to the control room; "already" changes nothing."""
    scheme = core.schemes.get(inp.scheme)
    if scheme is None:
        return
    a = tx.alarm_map().get(inp.alarm_id)
    verdict = operator.check(scheme, a, inp, tx.now)
    if verdict.answer is operator.Answer.REFUSED:
        _refused(
            tx,
            inp.scheme,
            "operator_refused",
            f"{inp.op.value} by {inp.by} not applied: {verdict.reason}",
            inp.alarm_id if a is not None else None,
        )
        return
    if verdict.answer is operator.Answer.ALREADY or a is None:
        return
    detail: dict[str, Any] = {"op": inp.op.value, "by": inp.by}
    if inp.carers:
        detail["carers"] = list(inp.carers)
    if inp.op is OperatorOp.NOTE:
        detail["note"] = inp.note[:1000]
    if inp.until is not None:
        detail["until"] = inp.until.isoformat()
    cid = inp.carers[0] if len(inp.carers) == 1 else None
    a = lifecycle.transition(tx, a, "operator", cid, **detail)
    tx.put_alarm(a)
    match inp.op:
        case OperatorOp.NOTE:
            pass
        case OperatorOp.ACKNOWLEDGE:
            tx.put_alarm(replace(a, acked_by=inp.by, acked_state=a.state.value))
        case OperatorOp.SILENCE:
            until = inp.until if inp.until is not None and inp.until > tx.now else None
            tx.put_alarm(replace(a, silenced_until=until))
        case OperatorOp.RESOLVE:
            assert inp.outcome is not None  # checked
            alarms.resolve(core, tx, a, None, inp.outcome, inp.note, by=inp.by)
        case OperatorOp.ESCALATE:
            tx.put_alarm(
                dispatch.escalate(core, tx, a, f"escalated now by the control room ({inp.by})")
            )
        case OperatorOp.ASSIGN:
            assign(core, tx, scheme, a, inp)
        case OperatorOp.ACCEPT:
            held = carer_actions.busy_elsewhere(tx, a, inp.carers[0])
            if held is not None:
                _refused(
                    tx,
                    inp.scheme,
                    "operator_refused",
                    f"accept by {inp.by} not applied: {inp.carers[0]} holds"
                    f" {held.priority} alarm {held.alarm_id[:8]}; reassign one of them",
                    a.alarm_id,
                )
                return
            carer_actions.on_action(
                core, tx, ActionIn(a.scheme, inp.carers[0], ActionKind.ACCEPT, a.alarm_id)
            )
        case OperatorOp.ARRIVED:
            carer_actions.on_action(
                core, tx, ActionIn(a.scheme, inp.carers[0], ActionKind.ARRIVED, a.alarm_id)
            )


def assign(core: Core, tx: _Tx, scheme: Scheme, a: Alarm, inp: OperatorIn) -> None:
    """Offer the alarm to the carers the operator chose, withdrawing everyone else's offer
    or acceptance (each is told why). The offer times out like any other."""
    keep = set(inp.carers)
    why = f"reassigned by the control room ({inp.by})"
    kept = []
    dropped = []
    for o in a.offers:
        if o.carer_id in keep:
            kept.append(o)
        else:
            tx.cmds.append(CancelOffer(a.scheme, o.carer_id, a.alarm_id, o.offer_id, why))
            dropped.append(o.carer_id)
    left = [c for c in a.accepted_by if c not in keep]
    for cid in left:
        tx.cmds.append(CancelOffer(a.scheme, cid, a.alarm_id, f"{a.alarm_id}.held", why))
        c = tx.carer_map().get(routing.carer_key(a.scheme, cid))
        if c is not None and c.busy_with == a.alarm_id:
            tx.put_carer(replace(c, busy_with=None))
    prior = a.state
    a = replace(
        a,
        offers=tuple(kept),
        accepted_by=tuple(c for c in a.accepted_by if c in keep),
        arrived_by=tuple(c for c in a.arrived_by if c in keep),
        tried=(*a.tried, *dropped, *left),
        double_handed=a.double_handed or len(keep) > 1,
    )
    have = operator.holders(a)
    new = [c for c in inp.carers if c not in have]
    for cid in new:
        role = "primary" if not a.accepted_by and not a.offers else "second"
        a = dispatch.send_offer(core, tx, scheme, a, cid, role)
    tx.cmds.append(
        RecordDecision(
            a.alarm_id,
            a.scheme,
            lifecycle.stamp(a, tx.now),
            {
                "step": "assign",
                "rule": f"assigned by the control room ({inp.by})",
                "priority": a.priority.value,
                "needed": lifecycle.needed(a),
                "chosen": list(inp.carers),
            },
        )
    )
    if len(a.accepted_by) >= lifecycle.needed(a):
        tx.put_alarm(a)  # only a surplus carer was let go: still accepted
        return
    a = lifecycle.transition(tx, a, AlarmState.OFFERED, inp.carers[0], offered_to=new)
    if prior is AlarmState.RAISED:
        lifecycle.careline(tx, a, "offered")
    elif prior is AlarmState.ACCEPTED:
        lifecycle.careline(tx, a, "reoffered")
    tx.put_alarm(lifecycle.schedule(tx, a, DeadlineKind.OFFER_TIMEOUT, a.chain.offer_timeout_s))


def on_fault_clear(tx: _Tx, inp: FaultClearIn) -> None:
    """A technician has seen to a device fault: it leaves the device-health queue."""
    key = f"{inp.scheme}/{inp.device_id}/{inp.code}"
    if tx.fault(key, None):
        tx.cmds.append(
            RaiseTechnical(
                inp.scheme,
                inp.device_id,
                inp.code,
                f"seen to by {inp.by}",
                tx.now,
                cleared=True,
            )
        )
