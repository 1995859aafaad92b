"""The primitives every engine rule changes an alarm through: a recorded transition, its one
live deadline, the close that withdraws every offer, and the Careline status.

Functions of ``(core, tx, ...)`` like the rest of the engine's rule modules; ``core`` is the
:class:`gateway.engine.core.Core` (schemes, config), ``tx`` the step in progress.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from devices.events import Priority
from devices.scheme import Scheme, SchemeKind
from gateway.engine import routing
from gateway.engine.model import (
    Alarm,
    AlarmState,
    CancelOffer,
    CarelineStatus,
    Deadline,
    DeadlineKind,
    EscalationChain,
    EventIn,
    RecordTransition,
    ScheduleDeadline,
)

if TYPE_CHECKING:
    from gateway.engine.core import Core, _Tx

ALARM_NAMESPACE = uuid.UUID("8d0f3a52-61c4-4c1e-9a0e-5b7f0e2d9c44")


def event_ref(e: EventIn) -> str:
    """An event's identity: de-duplication is per (device, event_id), as in the journal, so a
    second device reusing another's event id is a new alarm, not a duplicate."""
    return f"{e.scheme}/{e.device_id}/{e.event_id}"


def chain_for(chain: EscalationChain, scheme: Scheme) -> EscalationChain:
    """The escalation chain an alarm of ``scheme`` follows: in the community (people in their
    own homes), the chain also advises the council's emergency duty team."""
    return replace(chain, advise_edt=scheme.kind is SchemeKind.COMMUNITY)


def alarm_for_event(
    core: Core,
    tx: _Tx,
    e: EventIn,
    *,
    kind: str,
    priority: Priority,
    state: AlarmState,
    ref: str | None,
    flat_id: str | None,
    double_handed: bool,
    reason: str,
    alert_control_room: bool = False,
) -> Alarm:
    """A new alarm (or test call) opened by a device event: its id comes from the event, so
    a replay or a redelivery opens the same one."""
    scheme = core.schemes[e.scheme]
    return Alarm(
        alarm_id=str(uuid.uuid5(ALARM_NAMESPACE, f"event/{event_ref(e)}")),
        scheme=e.scheme,
        kind=kind,
        priority=priority,
        state=state,
        opened_at=e.occurred_at,
        received_at=e.received_at,
        last_at=tx.now,
        resident_ref=ref,
        flat_id=flat_id,
        device_id=e.device_id,
        double_handed=double_handed,
        alert_control_room=alert_control_room,
        event_ids=(event_ref(e),),
        chain=chain_for(core.config.chain, scheme),
        reason=reason,
    )


def stamp(a: Alarm, now: datetime) -> datetime:
    return max(now, a.last_at)


def transition(
    tx: _Tx,
    a: Alarm,
    state: str,
    carer_id: str | None = None,
    **detail: Any,
) -> Alarm:
    at = stamp(a, tx.now)
    new_state = AlarmState(state) if state in AlarmState.__members__.values() else a.state
    nagged = a.nagged if new_state is a.state else 0
    a = replace(a, last_at=at, state=new_state, nagged=nagged)
    tx.cmds.append(RecordTransition(a.alarm_id, a.scheme, state, at, a.priority, carer_id, detail))
    return a


def schedule(tx: _Tx, a: Alarm, kind: DeadlineKind, seconds: float) -> Alarm:
    epoch = a.epoch + 1
    due = tx.now + timedelta(seconds=seconds)
    tx.cmds.append(ScheduleDeadline(a.alarm_id, epoch, due, kind))
    return replace(a, epoch=epoch, deadline=Deadline(due, epoch, kind))


def close(tx: _Tx, a: Alarm, why: str, *, told: tuple[str, ...] = ()) -> Alarm:
    """The one way an alarm stops being open: every live offer is withdrawn with ``why``.

    A carer left holding an offer for a closed alarm may walk to a flat for nothing while
    another alarm waits, so no close path may drop an offer silently. Carers who accepted
    are told too (``told`` names those who already know, such as the one who resolved)."""
    for o in a.offers:
        tx.cmds.append(CancelOffer(a.scheme, o.carer_id, a.alarm_id, o.offer_id, why))
    for cid in a.accepted_by:
        if cid not in told:
            tx.cmds.append(CancelOffer(a.scheme, cid, a.alarm_id, f"{a.alarm_id}.held", why))
    return replace(a, deadline=None, epoch=a.epoch + 1, offers=())


def careline(tx: _Tx, a: Alarm, status: str, **kw: Any) -> None:
    if a.callout_id is not None:
        at = stamp(a, tx.now)
        tx.cmds.append(CarelineStatus(a.scheme, a.callout_id, a.alarm_id, status, at, **kw))


def open_for(tx: _Tx, scheme: str, resident: str | None, device: str | None) -> Alarm | None:
    """The resident's oldest open alarm (or, with no resident, the device's)."""
    if resident is not None:
        mine = tx.state.open_for_resident(scheme, resident)
        return mine[0] if mine else None
    if device is not None:
        held = tx.state.on_board_for_device(scheme, device)
        return next((a for a in held if a.is_open), None)
    return None


def needed(a: Alarm) -> int:
    return 2 if a.double_handed else 1


def quiet(a: Alarm, now: datetime) -> bool:
    """Has the control room held this alarm's repeat alerts (silenced, or acknowledged in
    the state it is still in)? The first alert of each kind always goes."""
    silenced = a.silenced_until is not None and a.silenced_until > now
    return silenced or a.acked_state == a.state.value


def free_carers(tx: _Tx, a: Alarm) -> None:
    for cid in a.accepted_by:
        c = tx.carer_map().get(routing.carer_key(a.scheme, cid))
        if c is not None and c.busy_with == a.alarm_id:
            pos = (
                replace(c.position, flat=a.flat_id)
                if a.state is AlarmState.ARRIVED and a.flat_id
                else c.position
            )
            tx.put_carer(replace(c, busy_with=None, position=pos))
