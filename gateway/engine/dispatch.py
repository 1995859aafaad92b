"""Dispatch: offer an alarm to the nearest eligible carer(s), escalate to everyone on shift
when there is nobody (or nobody answers), and take an offer back when its carer cannot keep it.

Functions of ``(core, tx, ...)``; each returns the changed alarm or puts it in ``tx``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from devices.events import Priority
from devices.scheme import Scheme
from gateway.engine import lifecycle, routing, visit_flow
from gateway.engine.model import (
    AdviseEdt,
    Alarm,
    AlarmState,
    CancelOffer,
    CarerState,
    DeadlineKind,
    NotifyControlRoom,
    NotifyOnCall,
    Offer,
    RecordDecision,
    SendOffer,
    higher,
)

if TYPE_CHECKING:
    from gateway.engine.core import Core, _Tx


def send_offer(core: Core, tx: _Tx, scheme: Scheme, a: Alarm, carer_id: str, role: str) -> Alarm:
    n = a.offers_sent + 1
    offer = Offer(f"{a.alarm_id}.{n}", carer_id, tx.now, role)
    a = replace(a, offers=(*a.offers, offer), offers_sent=n)
    tx.cmds.append(
        SendOffer(
            a.scheme,
            carer_id,
            a.alarm_id,
            offer.offer_id,
            role,
            core.offer_payload(scheme, a, offer),
        )
    )
    return a


def dispatch(core: Core, tx: _Tx, a: Alarm) -> Alarm:
    """Offer the alarm to the nearest eligible carer(s), or escalate when there are none."""
    scheme = core.schemes[a.scheme]
    cfg = core.config
    if a.priority is Priority.P0:
        return escalate(core, tx, a, "fire alarm: everyone on shift at once")
    if a.offers_sent >= a.chain.max_individual_offers:
        return escalate(core, tx, a, f"{a.offers_sent} offers without an answer")
    cands = routing.evaluate(
        scheme,
        a,
        tx.carer_map(),
        tx.alarm_map(),
        tx.now,
        handset_timeout_s=cfg.handset_timeout_s,
        params=cfg.travel,
    )
    cands, skipped = visit_flow.filter_candidates(core, tx, a, cands)
    eligible = [c for c in cands if c.eligible]
    wanted = lifecycle.needed(a) - len(a.accepted_by) - len(a.offers)
    chosen = eligible[: max(wanted, 0)]
    tx.cmds.append(
        RecordDecision(
            a.alarm_id,
            a.scheme,
            lifecycle.stamp(a, tx.now),
            {
                "step": a.offers_sent + 1,
                "rule": "nearest eligible carer by estimated travel time",
                "priority": a.priority.value,
                "needed": lifecycle.needed(a),
                "candidates": [visit_flow.candidate_record(c, skipped) for c in cands],
                "chosen": [c.carer_id for c in chosen],
            },
        )
    )
    if not chosen:
        if a.offers:  # a pair member is still deciding; wait for them
            return lifecycle.schedule(tx, a, DeadlineKind.OFFER_TIMEOUT, a.chain.offer_timeout_s)
        return escalate(core, tx, a, "no eligible carer left to offer")
    for c in chosen:
        role = "primary" if not a.accepted_by and not a.offers else "second"
        a = send_offer(core, tx, scheme, a, c.carer_id, role)
    if a.double_handed and len(chosen) + len(a.accepted_by) + len(a.offers) - len(chosen) < 2:
        tx.cmds.append(
            NotifyControlRoom(
                a.scheme,
                a.priority,
                "second_carer_needed",
                "double-handed alarm: only one carer could be offered; find a second",
                a.alarm_id,
            )
        )
    first = a.state in (AlarmState.RAISED,)
    a = lifecycle.transition(
        tx,
        a,
        AlarmState.OFFERED,
        chosen[0].carer_id,
        offered_to=[c.carer_id for c in chosen],
        travel_s=[round(c.travel_s or 0, 1) for c in chosen],
    )
    if first:
        lifecycle.careline(tx, a, "offered")
    return lifecycle.schedule(tx, a, DeadlineKind.OFFER_TIMEOUT, a.chain.offer_timeout_s)


def escalate(core: Core, tx: _Tx, a: Alarm, why: str) -> Alarm:
    """Offer to everyone on shift, tell the control room and the on-call senior."""
    scheme = core.schemes[a.scheme]
    cfg = core.config
    holders = {o.carer_id for o in a.offers} | set(a.accepted_by)
    sent = []
    for carer in scheme.carers:
        if carer.id in holders:
            continue
        c = tx.carer_map().get(routing.carer_key(scheme.id, carer.id)) or CarerState(
            carer.id, scheme.id
        )
        ok, _ = routing.routable(scheme, c, tx.now, cfg.handset_timeout_s)
        if ok:
            a = send_offer(core, tx, scheme, a, carer.id, "all")
            sent.append(carer.id)
    tx.cmds.append(
        RecordDecision(
            a.alarm_id,
            a.scheme,
            lifecycle.stamp(a, tx.now),
            {"step": "escalate", "rule": why, "offered_to_all": sent},
        )
    )
    level = higher(a.priority, Priority.P1)
    # A repeat the control room has acknowledged or silenced is held (offers still go out).
    if not (a.state is AlarmState.ESCALATED and lifecycle.quiet(a, tx.now)):
        tx.cmds.append(
            NotifyControlRoom(
                a.scheme,
                level,
                "escalated",
                f"{a.kind} alarm unanswered ({why}); offered to {len(sent)} on shift",
                a.alarm_id,
            )
        )
        seniors: list[str | None] = list(routing.on_call_seniors(scheme, tx.now)) or [None]
        for senior in seniors:
            tx.cmds.append(NotifyOnCall(a.scheme, senior, a.alarm_id, f"escalated: {why}"))
    if a.chain.advise_edt:
        tx.cmds.append(AdviseEdt(a.scheme, a.alarm_id, f"mobile response unanswered: {why}"))
    first = a.state is AlarmState.RAISED
    a = lifecycle.transition(tx, a, AlarmState.ESCALATED, None, reason=why, offered_to=sent)
    if first:
        lifecycle.careline(tx, a, "offered")
    return lifecycle.schedule(tx, a, DeadlineKind.ESCALATION_REPEAT, a.chain.escalation_repeat_s)


def withdraw(
    core: Core, tx: _Tx, a: Alarm, offer: Offer, step: str, cancel_reason: str | None
) -> None:
    """Take one carer's live offer back (declined, signed out, handset silent) and move on.

    When the carer did not ask for it, their handset is told with a cancel."""
    cid = offer.carer_id
    if cancel_reason is not None:
        tx.cmds.append(CancelOffer(a.scheme, cid, a.alarm_id, offer.offer_id, cancel_reason))
    a = replace(a, offers=tuple(o for o in a.offers if o is not offer), tried=(*a.tried, cid))
    a = lifecycle.transition(tx, a, step, cid)
    if a.state is AlarmState.OFFERED and len(a.offers) + len(a.accepted_by) < lifecycle.needed(a):
        a = dispatch(core, tx, a)
    tx.put_alarm(a)


def withdraw_all(core: Core, tx: _Tx, scheme_id: str, cid: str, why: str) -> None:
    for held in tx.state.offered_to(scheme_id, cid):
        a = tx.alarm_map()[held.alarm_id]  # as it is now: an earlier withdrawal may move it
        if not a.is_open:
            continue
        offer = next((o for o in a.offers if o.carer_id == cid), None)
        if offer is not None:
            withdraw(core, tx, a, offer, "withdrawn", cancel_reason=why)
