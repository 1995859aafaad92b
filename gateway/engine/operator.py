"""Whether an operator's action still applies to an alarm: one rule for the API and the engine.

The API asks before it journals the action (so the operator gets a clear 409 at once, or hears
that the alarm is already where they want it); the engine asks again when it applies the
journaled action, because the alarm may have moved on in between. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from devices.records import AlarmControl, FaultControl, OperatorControl
from devices.scheme import Scheme
from gateway.engine.model import (
    Alarm,
    AlarmState,
    FaultClearIn,
    OperatorIn,
    OperatorOp,
    Outcome,
)


class Answer(StrEnum):
    APPLY = "apply"  # it applies: journal it (the engine will apply it)
    ALREADY = "already"  # the alarm is already where the operator wants it: nothing to do
    REFUSED = "refused"  # it no longer applies; ``reason`` says why


@dataclass(frozen=True, slots=True)
class Verdict:
    answer: Answer
    reason: str = ""


def _apply() -> Verdict:
    return Verdict(Answer.APPLY)


def _already(why: str) -> Verdict:
    return Verdict(Answer.ALREADY, why)


def _refused(why: str) -> Verdict:
    return Verdict(Answer.REFUSED, why)


def holders(a: Alarm) -> set[str]:
    """Carers holding this alarm: a live offer or an acceptance."""
    return {o.carer_id for o in a.offers} | set(a.accepted_by)


def _who(a: Alarm) -> str:
    who = ", ".join(a.accepted_by) or ", ".join(sorted({o.carer_id for o in a.offers}))
    return f" (with {who})" if who else ""


def check(scheme: Scheme, a: Alarm | None, inp: OperatorIn, now: datetime) -> Verdict:
    """Does ``inp`` apply to ``a`` now? The answer never depends on who asked."""
    if a is None or a.scheme != inp.scheme:
        return _refused(f"no alarm {inp.alarm_id} in {inp.scheme}")
    for cid in inp.carers:
        if scheme.carer(cid) is None:
            return _refused(f"no carer {cid!r} in {inp.scheme}")
    op = inp.op
    if op is OperatorOp.NOTE:
        return _apply() if inp.note.strip() else _refused("a note needs some text")
    if op is OperatorOp.RESOLVE:
        if a.state is AlarmState.RESOLVED:
            return _already(f"already resolved ({a.outcome.value if a.outcome else '-'})")
        if not a.on_board:
            return _refused(f"alarm already {a.state.value}")
        if inp.outcome is None:
            return _refused("an outcome is required")
        if inp.outcome is Outcome.OTHER and not inp.note.strip():
            return _refused("outcome 'other' needs a note")
        return _apply()
    if a.state is AlarmState.TEST_CALL:
        return _refused("this is a test call: promote it first (or resolve it)")
    if not a.is_open:
        return _refused(f"alarm already {a.state.value}")
    match op:
        case OperatorOp.ASSIGN:
            return _assign(a, inp)
        case OperatorOp.ESCALATE:
            if a.state is AlarmState.ESCALATED:
                return _already("already escalated to everyone on shift")
            if a.state in (AlarmState.ACCEPTED, AlarmState.ARRIVED):
                return _refused(f"alarm is {a.state.value}{_who(a)}: reassign it instead")
            return _apply()
        case OperatorOp.ACCEPT:
            [cid] = inp.carers or ("",)
            if cid in a.accepted_by:
                return _already(f"{cid} has already accepted")
            if all(o.carer_id != cid for o in a.offers):
                return _refused(
                    f"{cid} has no live offer for this alarm (it is {a.state.value}{_who(a)}):"
                    " assign it to them first"
                )
            return _apply()
        case OperatorOp.ARRIVED:
            [cid] = inp.carers or ("",)
            if cid in a.arrived_by:
                return _already(f"{cid} has already arrived")
            if cid not in a.accepted_by:
                return _refused(
                    f"{cid} has not accepted this alarm{_who(a)}: accept for them first"
                )
            return _apply()
        case OperatorOp.ACKNOWLEDGE:
            if a.acked_state == a.state.value:
                return _already(f"already acknowledged by {a.acked_by} while {a.state.value}")
            return _apply()
        case OperatorOp.SILENCE:
            live = a.silenced_until if a.silenced_until and a.silenced_until > now else None
            if inp.until == live or (inp.until is not None and inp.until <= now and live is None):
                return _already("already silenced until then" if live else "not silenced")
            return _apply()
    return _refused(f"unknown action {op}")  # pragma: no cover - the match is exhaustive


def _assign(a: Alarm, inp: OperatorIn) -> Verdict:
    wanted = inp.carers
    if not 1 <= len(wanted) <= 2 or len(set(wanted)) != len(wanted):
        return _refused("assign to one carer, or to a pair of two different carers")
    if a.state is AlarmState.ARRIVED:
        return _refused(
            f"{', '.join(a.arrived_by)} already with the resident: resolve it, or add a note"
        )
    if holders(a) == set(wanted):
        return _already(f"already with {', '.join(wanted)}")
    return _apply()


def from_record(scheme: str, rec: OperatorControl) -> OperatorIn | FaultClearIn | None:
    """The engine's input for a journaled operator action."""
    if isinstance(rec, FaultControl):
        return FaultClearIn(scheme, rec.device_id, rec.code, rec.by)
    if not isinstance(rec, AlarmControl):
        return None  # a newer kind this engine does not know: the shell logs nothing applied
    return OperatorIn(
        scheme,
        str(rec.alarm_id),
        OperatorOp(rec.op.value),
        rec.by,
        tuple(rec.carers),
        Outcome(rec.outcome.value) if rec.outcome else None,
        rec.note,
        rec.until,
    )
