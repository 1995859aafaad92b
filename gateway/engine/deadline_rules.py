"""What happens when an alarm's one live deadline falls due: a handler per deadline kind, in
a table (the deadline heap itself is ``gateway.engine.deadlines``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from devices.events import Priority
from gateway.engine import dispatch, lifecycle
from gateway.engine.model import (
    Alarm,
    CancelOffer,
    DeadlineKind,
    NotifyControlRoom,
    Remind,
    TimerIn,
)

if TYPE_CHECKING:
    from gateway.engine.core import Core, _Tx


def _defer_expired(core: Core, tx: _Tx, a: Alarm) -> Alarm:
    """A bed or chair exit nobody cleared in time: it is an alarm now."""
    a = lifecycle.transition(tx, a, "defer_expired", None)
    return dispatch.dispatch(core, tx, a)


def _offer_timeout(core: Core, tx: _Tx, a: Alarm) -> Alarm:
    """Nobody answered the current individual offer(s): withdraw them and offer on."""
    timed_out = [o for o in a.offers if o.role != "all"]
    for o in timed_out:
        tx.cmds.append(
            CancelOffer(a.scheme, o.carer_id, a.alarm_id, o.offer_id, "not answered in time")
        )
    a = replace(
        a,
        offers=tuple(o for o in a.offers if o.role == "all"),
        tried=(*a.tried, *(o.carer_id for o in timed_out)),
    )
    a = lifecycle.transition(tx, a, "offer_timeout", None, carers=[o.carer_id for o in timed_out])
    return dispatch.dispatch(core, tx, a)


def _escalation_repeat(core: Core, tx: _Tx, a: Alarm) -> Alarm:
    """Escalated and still unanswered: everyone on shift and the control room again."""
    return dispatch.escalate(core, tx, a, "still unanswered")


def _no_arrival(core: Core, tx: _Tx, a: Alarm) -> Alarm:
    """Accepted but nobody arrived in the travel time plus margin: remind, tell, repeat."""
    for cid in a.accepted_by:
        if cid not in a.arrived_by:
            tx.cmds.append(
                Remind(
                    a.scheme,
                    cid,
                    a.alarm_id,
                    "please mark arrived, or tell the control room",
                )
            )
    if not (a.nagged and lifecycle.quiet(a, tx.now)):
        tx.cmds.append(
            NotifyControlRoom(
                a.scheme,
                a.priority,
                "no_arrival",
                "accepted but no arrival within the expected time",
                a.alarm_id,
            )
        )
    a = replace(a, nagged=a.nagged + 1)
    a = lifecycle.transition(tx, a, "retrigger", None, reason="no arrival")
    return lifecycle.schedule(tx, a, DeadlineKind.ARRIVAL, a.chain.arrival_repeat_s)


def _long_on_site(core: Core, tx: _Tx, a: Alarm) -> Alarm:
    """On site a long time without resolving: the control room checks in, and again later."""
    if not (a.nagged and lifecycle.quiet(a, tx.now)):
        tx.cmds.append(
            NotifyControlRoom(
                a.scheme,
                Priority.P3,
                "long_on_site",
                "carer on site a long time without resolving",
                a.alarm_id,
            )
        )
    a = replace(a, nagged=a.nagged + 1)
    return lifecycle.schedule(tx, a, DeadlineKind.ON_SITE, a.chain.on_site_check_s)


Handler = Callable[["Core", "_Tx", Alarm], Alarm]

# Every kind has its handler (tests/test_engine_lifecycle.py checks the table is complete).
HANDLERS: Mapping[DeadlineKind, Handler] = {
    DeadlineKind.DEFER: _defer_expired,
    DeadlineKind.OFFER_TIMEOUT: _offer_timeout,
    DeadlineKind.ESCALATION_REPEAT: _escalation_repeat,
    DeadlineKind.ARRIVAL: _no_arrival,
    DeadlineKind.ON_SITE: _long_on_site,
}


def on_deadline(core: Core, tx: _Tx, a: Alarm) -> None:
    """The alarm's live deadline has fallen due (its timer, or a tick found it overdue)."""
    assert a.deadline is not None
    tx.put_alarm(HANDLERS[a.deadline.kind](core, tx, a))


def on_timer(core: Core, tx: _Tx, inp: TimerIn) -> None:
    """An alarm's timer fired. A stale one (the alarm moved on, so its epoch moved on) is
    ignored."""
    a = tx.alarm_map().get(inp.alarm_id)
    if a is not None and a.is_open and a.deadline and a.deadline.epoch == inp.epoch:
        on_deadline(core, tx, a)
