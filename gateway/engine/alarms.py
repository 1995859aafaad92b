"""Alarms: raised from an event or a Careline callout (after triage), merged into a
resident's open call, cleared, cancelled or resolved, and the no-contact alarm a device clears
by being heard again.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from devices.events import CarelineCallout, EventKind, Priority
from gateway.engine import device_mode, dispatch, lifecycle, routing
from gateway.engine.lifecycle import ALARM_NAMESPACE
from gateway.engine.model import (
    AdviseEdt,
    Alarm,
    AlarmState,
    CalloutIn,
    DeadlineKind,
    EventIn,
    FollowUpTask,
    NotifyControlRoom,
    NotifyOnCall,
    Outcome,
    RaiseTechnical,
    higher,
)
from gateway.engine.triage import ALARM_KINDS, Queue, triage_callout, triage_event

if TYPE_CHECKING:
    from gateway.engine.core import Core, _Tx

_FAULT_KINDS = frozenset(
    {EventKind.LOW_BATTERY, EventKind.TAMPER, EventKind.POWER_FAIL, EventKind.LINK_FAIL}
)


def open_alarm(core: Core, tx: _Tx, a: Alarm, defer_s: int | None, **detail: Any) -> None:
    a = lifecycle.transition(tx, a, AlarmState.RAISED, None, kind=a.kind, reason=a.reason, **detail)
    if a.alert_control_room:
        tx.cmds.append(
            NotifyControlRoom(a.scheme, a.priority, "fire", f"{a.kind} alarm raised", a.alarm_id)
        )
    if defer_s:
        a = lifecycle.schedule(tx, a, DeadlineKind.DEFER, defer_s)
    else:
        a = dispatch.dispatch(core, tx, a)
    tx.put_alarm(a)


def on_event(core: Core, tx: _Tx, e: EventIn) -> None:
    scheme = core.schemes.get(e.scheme)
    if scheme is None:
        return
    key = f"{e.scheme}/{e.device_id}"
    info = core.devices.get(key)  # None: not a device of this scheme
    if info is None:
        return
    device = info.device
    # Heard when it reached the gateway, not when a backlog let the engine apply it.
    prior = tx.state.device_seen.get(key)
    heard = min(e.received_at, tx.now)
    tx.seen(key, heard if prior is None else max(prior, heard))
    if key in tx.state.no_contact:
        tx.state.set_no_contact(key, False)
        tx.cmds.append(
            RaiseTechnical(
                e.scheme, e.device_id, "no_contact", "device heard again", tx.now, cleared=True
            )
        )
        clear_no_contact(tx, e.scheme, e.device_id)
    if tx.state.alarm_with_event(lifecycle.event_ref(e)) is not None:
        return  # a duplicate never opens a second alarm
    track_fault(tx, key, EventKind(e.kind), heard)
    resident, flat_id, sole = info.resident, info.flat_id, info.sole
    # Night or day by when the gateway received the event, not when the engine got to it:
    # a backlog must not turn a 03:00 door-open into a daytime one (nor trust a device clock).
    local = e.received_at.astimezone(scheme.tz)
    kind = EventKind(e.kind)
    t = triage_event(
        core._policy(e.scheme),
        kind,
        device=device,
        resident=resident,
        local_dt=local,
        sole_alarm_device=sole,
    )
    ref = resident.client_ref if resident else None
    until = device_mode.live_until(tx, key)
    if until is not None and (t.queue is Queue.ALARM or kind in ALARM_KINDS):
        if t.priority is Priority.P0:
            # A fire during a test window is always real: nobody tests a smoke head by
            # setting the flat alight, and a real fire must never wait for an operator.
            t = replace(t, reason=f"{t.reason}; device in a test window, a fire is real")
        else:
            device_mode.record_test_call(core, tx, e, kind, t, ref, flat_id, until)
            return
    if t.queue is Queue.TECHNICAL:
        tx.cmds.append(RaiseTechnical(e.scheme, e.device_id, kind.value, t.reason, tx.now))
        return
    if t.queue is Queue.CLEAR:
        on_clear(tx, e, kind, ref)
        return
    if t.queue is Queue.CANCEL:
        on_resident_cancel(core, tx, e, ref)
        return
    if t.queue is not Queue.ALARM or t.priority is None:
        return
    open_a = lifecycle.open_for(tx, e.scheme, ref, e.device_id)
    window = timedelta(seconds=core._policy(e.scheme).merge_window_s)
    # A fire is its own incident: it never folds into a resident's open call.
    if (
        t.priority is not Priority.P0
        and open_a is not None
        and (open_a.state is not AlarmState.ARRIVED or tx.now - open_a.last_at <= window)
    ):
        merge(core, tx, open_a, e, t.priority, t.double_handed)
        return
    a = lifecycle.alarm_for_event(
        core,
        tx,
        e,
        kind=kind.value,
        priority=t.priority,
        state=AlarmState.RAISED,
        ref=ref,
        flat_id=flat_id,
        double_handed=t.double_handed,
        reason=t.reason,
        alert_control_room=t.alert_control_room,
    )
    open_alarm(core, tx, a, t.defer_s)


def track_fault(tx: _Tx, key: str, kind: EventKind, heard: datetime) -> None:
    """Keep the device-health queue: technical faults open here and close on their clear."""
    if kind in _FAULT_KINDS:
        tx.fault(f"{key}/{kind.value}", heard)
    elif kind is EventKind.POWER_RESTORED:
        tx.fault(f"{key}/{EventKind.POWER_FAIL.value}", None)
    elif kind is not EventKind.LINK_FAIL:
        tx.fault(f"{key}/{EventKind.LINK_FAIL.value}", None)  # heard: the link works


def merge(core: Core, tx: _Tx, a: Alarm, e: EventIn, priority: Priority, double: bool) -> None:
    raised = higher(a.priority, priority)
    a = replace(
        a,
        count=a.count + 1,
        event_ids=(*a.event_ids, lifecycle.event_ref(e)),
        priority=raised,
        double_handed=a.double_handed or double,
    )
    a = lifecycle.transition(tx, a, "merged", None, kind=e.kind, count=a.count, event_id=e.event_id)
    if a.state is AlarmState.RAISED and a.deadline and a.deadline.kind is DeadlineKind.DEFER:
        a = dispatch.dispatch(core, tx, a)  # a real press while a bed exit was being watched
    tx.put_alarm(a)


def on_callout(core: Core, tx: _Tx, c: CalloutIn) -> None:
    scheme = core.schemes.get(c.scheme)
    if scheme is None:
        return
    alarm_id = str(uuid.uuid5(ALARM_NAMESPACE, f"callout/{c.scheme}/{c.callout_id}"))
    if alarm_id in tx.alarm_map():
        return
    resident = scheme.resident(c.resident_ref)
    view = CarelineCallout(
        callout_id=c.callout_id,
        resident_ref=c.resident_ref,
        reason=c.reason or "-",
        priority=c.priority,
        operator=c.operator or "unknown",
        requested_at=c.requested_at,
    )
    t = triage_callout(core._policy(c.scheme), view, resident)
    a = Alarm(
        alarm_id=alarm_id,
        scheme=c.scheme,
        kind="callout",
        priority=t.priority or c.priority,
        state=AlarmState.RAISED,
        opened_at=c.requested_at,
        received_at=c.received_at,
        last_at=tx.now,
        resident_ref=c.resident_ref,
        flat_id=resident.flat if resident else None,
        callout_id=c.callout_id,
        double_handed=t.double_handed,
        alert_control_room=t.alert_control_room,
        chain=lifecycle.chain_for(core.config.chain, scheme),
        reason=c.reason[:200],
    )
    lifecycle.careline(tx, a, "received")
    open_alarm(core, tx, a, None)


def on_clear(tx: _Tx, e: EventIn, kind: EventKind, ref: str | None) -> None:
    if kind is EventKind.POWER_RESTORED:
        tx.cmds.append(
            RaiseTechnical(
                e.scheme, e.device_id, "power_fail", "power restored", tx.now, cleared=True
            )
        )
        return
    a = lifecycle.open_for(tx, e.scheme, ref, e.device_id)
    if a is None or a.state is not AlarmState.RAISED or not a.deadline:
        return
    if a.deadline.kind is DeadlineKind.DEFER:
        why = f"cleared by {kind.value}"
        a = lifecycle.transition(tx, a, AlarmState.CANCELLED, None, reason=why)
        tx.put_alarm(lifecycle.close(tx, a, why))


def on_resident_cancel(core: Core, tx: _Tx, e: EventIn, ref: str | None) -> None:
    a = lifecycle.open_for(tx, e.scheme, ref, e.device_id)
    if a is None:
        return
    policy = core._policy(e.scheme)
    if policy.cancel_welfare_check:
        lower = policy.cancel_downgrade_to
        a = replace(
            a,
            welfare_check=True,
            priority=lower if a.priority is not Priority.P0 else a.priority,
            event_ids=(*a.event_ids, lifecycle.event_ref(e)),
        )
        a = lifecycle.transition(tx, a, "resident_cancel", None, welfare_check=True)
        tx.put_alarm(a)
        return
    cancel(tx, a, "cancelled by resident")


def cancel(tx: _Tx, a: Alarm, why: str) -> None:
    lifecycle.free_carers(tx, a)
    a = lifecycle.transition(tx, a, AlarmState.CANCELLED, None, reason=why)
    lifecycle.careline(tx, a, "cancelled")
    tx.put_alarm(lifecycle.close(tx, a, why))  # whoever is on their way is told too


def resolve(
    core: Core, tx: _Tx, a: Alarm, cid: str | None, outcome: Outcome, note: str, by: str = ""
) -> None:
    """Close ``a`` with an outcome: by the carer ``cid``, or by the operator ``by``."""
    a = replace(a, outcome=outcome, note=note[:1000])
    lifecycle.free_carers(tx, a)
    extra = {"by": by} if by else {}
    a = lifecycle.transition(
        tx, a, AlarmState.RESOLVED, cid, outcome=outcome.value, note=a.note, **extra
    )
    lifecycle.careline(tx, a, "resolved", outcome=outcome.value)
    if outcome is Outcome.UNABLE_TO_GAIN_ACCESS:
        # The seeds' no-response policy: never closes silently.
        msg = (
            "unable to gain access: follow the no-response policy"
            " (welfare check; police or EDT for forced entry)"
        )
        tx.cmds.append(FollowUpTask(a.scheme, a.alarm_id, "no_response", msg))
        tx.cmds.append(
            NotifyControlRoom(a.scheme, Priority.P1, "unable_to_gain_access", msg, a.alarm_id)
        )
        seniors: list[str | None] = list(routing.on_call_seniors(core.schemes[a.scheme], tx.now))
        for senior in seniors or [None]:
            tx.cmds.append(NotifyOnCall(a.scheme, senior, a.alarm_id, msg))
        if a.chain.advise_edt:
            tx.cmds.append(AdviseEdt(a.scheme, a.alarm_id, msg))
    # The resolver knows; a pair's other carer and any still-live offer are told.
    if cid is None:
        tx.put_alarm(lifecycle.close(tx, a, f"resolved by the control room ({by})"))
    else:
        tx.put_alarm(lifecycle.close(tx, a, f"resolved by {cid}", told=(cid,)))


def clear_no_contact(tx: _Tx, scheme_id: str, device_id: str) -> None:
    for a in tx.state.on_board_for_device(scheme_id, device_id):
        if a.is_open and a.kind == "no_contact":
            if a.state in (AlarmState.RAISED, AlarmState.OFFERED, AlarmState.ESCALATED):
                cancel(tx, a, "device heard again")
