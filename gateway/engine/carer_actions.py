"""Carers: their handset's actions on an alarm (accept, decline, arrived, resolved; one
handler per action, in a table), pre-emption by a more urgent alarm, sleep-in disturbances,
and presence (login, logout, handset heartbeat, status).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from devices.events import Priority
from gateway.engine import alarms, dispatch, lifecycle, routing, travel, visit_flow
from gateway.engine.model import (
    PRIORITY_RANK,
    ActionIn,
    ActionKind,
    ActionResult,
    Alarm,
    AlarmState,
    CancelOffer,
    CarerState,
    CarerStatus,
    DeadlineKind,
    NotifyControlRoom,
    Offer,
    Outcome,
    PresenceIn,
    RecordTransition,
)
from responders.models import ShiftRole

if TYPE_CHECKING:
    from gateway.engine.core import Core, _Tx

SLEEP_IN_DISTURBANCE_LIMIT = 2  # BCP specification 1.1.47: more than twice is a waking night


def night_of(local: datetime) -> str:
    """The night a local time belongs to, named by the date it started (noon to noon)."""
    start = local.date() - timedelta(days=1) if local.hour < 12 else local.date()
    return start.isoformat()


def _live_offer(a: Alarm, act: ActionIn) -> Offer | None:
    """The carer's live offer of ``a`` (the one named, if the handset named one)."""
    return next(
        (
            o
            for o in a.offers
            if o.carer_id == act.carer_id and (act.offer_id is None or o.offer_id == act.offer_id)
        ),
        None,
    )


def _accept(core: Core, tx: _Tx, a: Alarm, act: ActionIn) -> tuple[bool, str]:
    cid = act.carer_id
    if cid in a.accepted_by:
        return True, "already accepted"
    live = _live_offer(a, act)
    if live is None:
        holder = ", ".join(a.accepted_by) or ", ".join(o.carer_id for o in a.offers)
        return (
            False,
            f"offer no longer live (alarm is {a.state.value}"
            + (f", with {holder})" if holder else ")"),
        )
    busy = busy_elsewhere(tx, a, cid)
    if busy is not None:
        return False, f"you hold {busy.priority} alarm {busy.alarm_id[:8]}: finish it first"
    accept(core, tx, a, cid, live)
    return True, "accepted"


def _decline(core: Core, tx: _Tx, a: Alarm, act: ActionIn) -> tuple[bool, str]:
    live = _live_offer(a, act)
    if live is None:
        # A decline of an offer that has already moved on (say, timed out and been
        # re-offered to everyone) must not silently withdraw the newer offer.
        return False, "offer no longer live"
    dispatch.withdraw(core, tx, a, live, "declined", cancel_reason=None)
    return True, "declined"


def _arrived(core: Core, tx: _Tx, a: Alarm, act: ActionIn) -> tuple[bool, str]:
    cid = act.carer_id
    if cid not in a.accepted_by:
        return False, "you have not accepted this alarm"
    if cid in a.arrived_by:
        return True, "already arrived"
    first = a.state is not AlarmState.ARRIVED
    a = replace(a, arrived_by=(*a.arrived_by, cid))
    a = lifecycle.transition(tx, a, AlarmState.ARRIVED, cid)
    if first:
        lifecycle.careline(tx, a, "arrived")
        a = lifecycle.schedule(tx, a, DeadlineKind.ON_SITE, a.chain.on_site_check_s)
    c = tx.carer_map().get(routing.carer_key(a.scheme, cid))
    if c is not None:
        tx.put_carer(replace(c, position=replace(c.position, flat=a.flat_id, x=None, y=None)))
    count_disturbance(core, tx, a, cid)
    tx.put_alarm(a)
    return True, "arrived"


def _resolved(core: Core, tx: _Tx, a: Alarm, act: ActionIn) -> tuple[bool, str]:
    cid = act.carer_id
    if cid not in a.accepted_by:
        return False, "you have not accepted this alarm"
    if a.state is not AlarmState.ARRIVED:
        return False, "mark arrived before resolving"
    if act.outcome is None:
        return False, "an outcome is required"
    if act.outcome is Outcome.OTHER and not act.note.strip():
        return False, "outcome 'other' needs a note"
    alarms.resolve(core, tx, a, cid, act.outcome, act.note)
    return True, "resolved"


# A carer's action on an open alarm -> its handler, which applies it and says (ok, why).
Handler = Callable[["Core", "_Tx", Alarm, ActionIn], tuple[bool, str]]
HANDLERS: Mapping[ActionKind, Handler] = {
    ActionKind.ACCEPT: _accept,
    ActionKind.DECLINE: _decline,
    ActionKind.ARRIVED: _arrived,
    ActionKind.RESOLVED: _resolved,
}


def on_action(core: Core, tx: _Tx, act: ActionIn) -> None:
    """A carer's handset action; the handset is always answered (``ActionResult``)."""
    a = tx.alarm_map().get(act.alarm_id)
    if a is None or a.scheme != act.scheme:
        ok, reason = False, "unknown alarm"
    elif not a.is_open:
        if act.action is ActionKind.RESOLVED and act.carer_id in a.accepted_by:
            ok, reason = True, "already resolved"  # a retried tap is harmless
        else:
            ok, reason = False, f"alarm already {a.state.value}"
    else:
        ok, reason = HANDLERS[act.action](core, tx, a, act)
    tx.cmds.append(
        ActionResult(
            act.scheme,
            act.carer_id,
            act.alarm_id,
            act.action.value,
            ok,
            reason,
            act.offer_id,
            act.action_id,
        )
    )


def count_disturbance(core: Core, tx: _Tx, a: Alarm, cid: str) -> None:
    """A sleep-in carer attending an alarm is disturbed; past two, the night is waking."""
    scheme = core.schemes[a.scheme]
    if ShiftRole.SLEEP_IN not in routing.on_shift_roles(scheme, cid, tx.now):
        return
    night = night_of(tx.now.astimezone(scheme.tz))
    n = tx.disturb(f"{a.scheme}/{cid}/{night}")
    tx.cmds.append(
        RecordTransition(
            a.alarm_id,
            a.scheme,
            "sleep_in_disturbance",
            lifecycle.stamp(a, tx.now),
            a.priority,
            cid,
            {"night": night, "count": n},
        )
    )
    if n == SLEEP_IN_DISTURBANCE_LIMIT + 1:
        tx.cmds.append(
            NotifyControlRoom(
                a.scheme,
                Priority.P3,
                "sleep_in_waking_night",
                f"sleep-in carer {cid} disturbed {n} times on the night of {night}:"
                " the night counts as a waking night",
                a.alarm_id,
            )
        )


def busy_elsewhere(tx: _Tx, a: Alarm, cid: str) -> Alarm | None:
    """The open alarm this carer may not leave for ``a`` (pre-emption needs two levels)."""
    c = tx.carer_map().get(routing.carer_key(a.scheme, cid))
    if c is None or c.busy_with is None or c.busy_with == a.alarm_id:
        return None
    held = tx.alarm_map().get(c.busy_with)
    if held is None or not held.is_open:
        return None
    if PRIORITY_RANK[held.priority] - PRIORITY_RANK[a.priority] >= 2:
        return None
    return held


def accept(core: Core, tx: _Tx, a: Alarm, cid: str, offer: Offer) -> None:
    scheme = core.schemes[a.scheme]
    a = replace(
        a,
        offers=tuple(o for o in a.offers if o is not offer),
        accepted_by=(*a.accepted_by, cid),
    )
    c = tx.carer_map().get(routing.carer_key(a.scheme, cid)) or CarerState(cid, a.scheme)
    if c.busy_with and c.busy_with != a.alarm_id:
        preempted(core, tx, c.busy_with, cid)  # checked by _can_leave before we got here
    tx.put_carer(replace(c, busy_with=a.alarm_id))
    visit_flow.on_taken(core, tx, a, cid)  # a P0/P1 takes them off a planned visit
    eta = 0.0
    if a.flat_id is not None:
        p = c.position
        est = travel.estimate(
            scheme,
            travel.Position(
                flat=p.flat,
                block=p.block,
                point=None if p.x is None or p.y is None else routing._point(p.x, p.y),
                floor=p.floor,
            ),
            a.flat_id,
            core.config.travel,
        )
        eta = est.seconds
    if len(a.accepted_by) < lifecycle.needed(a):
        a = lifecycle.transition(tx, a, "accepted_one", cid, eta_s=round(eta))
        if not a.offers:
            a = dispatch.dispatch(core, tx, a)
        tx.put_alarm(a)
        return
    for o in a.offers:
        tx.cmds.append(
            CancelOffer(a.scheme, o.carer_id, a.alarm_id, o.offer_id, "taken by another carer")
        )
    a = replace(a, offers=())
    a = lifecycle.transition(tx, a, AlarmState.ACCEPTED, cid, eta_s=round(eta))
    lifecycle.careline(tx, a, "accepted", eta_s=round(eta))
    a = lifecycle.schedule(tx, a, DeadlineKind.ARRIVAL, eta + a.chain.arrival_margin_s)
    tx.put_alarm(a)


def preempted(core: Core, tx: _Tx, alarm_id: str, cid: str) -> None:
    old = tx.alarm_map().get(alarm_id)
    if old is None or not old.is_open:
        return
    old = replace(
        old,
        accepted_by=tuple(x for x in old.accepted_by if x != cid),
        arrived_by=tuple(x for x in old.arrived_by if x != cid),
        tried=(*old.tried, cid),
    )
    old = lifecycle.transition(tx, old, "preempted", cid)
    lifecycle.careline(tx, old, "reoffered")
    if len(old.accepted_by) < lifecycle.needed(old):
        old = replace(old, state=AlarmState.OFFERED)
        old = dispatch.dispatch(core, tx, old)
    tx.put_alarm(old)


def on_presence(core: Core, tx: _Tx, p: PresenceIn) -> None:
    scheme = core.schemes.get(p.scheme)
    if scheme is None or scheme.carer(p.carer_id) is None:
        return
    key = routing.carer_key(p.scheme, p.carer_id)
    c = tx.carer_map().get(key) or CarerState(p.carer_id, p.scheme)
    if p.what == "login":
        c = replace(c, logged_in=True, handset_seen=tx.now, status=CarerStatus.AVAILABLE)
    elif p.what == "logout":
        c = replace(c, logged_in=False)
    elif p.what == "heartbeat":
        c = replace(c, handset_seen=tx.now)
    elif p.what == "status" and p.status is not None:
        c = replace(c, status=p.status)
    if p.position is not None:
        c = replace(c, position=p.position)
    if key in tx.state.silent_handsets and c.logged_in and c.handset_seen == tx.now:
        tx.state.set_silent(key, False)
    tx.put_carer(c)
    if not c.logged_in or c.status is not CarerStatus.AVAILABLE:
        # Anything they were offered moves on now rather than at the timeout.
        why = "signed out" if not c.logged_in else f"marked {c.status.value}"
        dispatch.withdraw_all(core, tx, p.scheme, p.carer_id, why)
    core._check_coverage(tx, scheme)
