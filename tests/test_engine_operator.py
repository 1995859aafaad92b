"""Operator actions through the pure core: each applies once, answers "already" when the alarm
is already there, is refused (and the control room told) when the alarm has moved on, and
acknowledging or silencing an alarm holds its repeat alerts but never its offers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.engine import operator
from gateway.engine.model import (
    ActionKind,
    AlarmState,
    CancelOffer,
    Command,
    NotifyControlRoom,
    NotifyOnCall,
    OperatorIn,
    OperatorOp,
    Outcome,
    RecordTransition,
    SendOffer,
    TimerIn,
)
from tests.engine_helpers import HZC, Driver, device_in, offers


def alerts(cmds: list[Command], code: str) -> list[NotifyControlRoom]:
    return [c for c in cmds if isinstance(c, NotifyControlRoom) and c.code == code]


def op(d: Driver, alarm_id: str, what: OperatorOp, **kw: object) -> list[Command]:
    return d.feed(OperatorIn(HZC.id, alarm_id, what, "ops-anna", **kw))  # type: ignore[arg-type]


def pressed() -> tuple[Driver, str]:
    """Two carers on, a pendant pressed in A-013: offered to the nearest (cw-01)."""
    d = Driver()
    d.login("cw-01", "A-012")
    d.login("cw-02", "B-050")
    cmds = d.event(device_in("A-013"))
    [offer] = offers(cmds)
    assert offer.carer_id == "cw-01"
    return d, offer.alarm_id


def fire_timer(d: Driver, alarm_id: str) -> list[Command]:
    a = d.state.alarms[alarm_id]
    assert a.deadline is not None
    d.now = a.deadline.due
    return d.feed(TimerIn(alarm_id, a.deadline.epoch))


def test_reassign_withdraws_the_offer_and_offers_the_chosen_carer() -> None:
    d, aid = pressed()
    cmds = op(d, aid, OperatorOp.ASSIGN, carers=("cw-02",))
    [cancel] = [c for c in cmds if isinstance(c, CancelOffer)]
    assert cancel.carer_id == "cw-01" and "reassigned by the control room" in cancel.reason
    [offer] = offers(cmds)
    assert offer.carer_id == "cw-02"
    a = d.state.alarms[aid]
    assert a.state is AlarmState.OFFERED and [o.carer_id for o in a.offers] == ["cw-02"]
    step = next(c for c in cmds if isinstance(c, RecordTransition) and c.state == "operator")
    assert step.detail == {"op": "assign", "by": "ops-anna", "carers": ["cw-02"]}
    # The same assignment again changes nothing: no second offer, no alert.
    again = op(d, aid, OperatorOp.ASSIGN, carers=("cw-02",))
    assert again == []


def test_reassign_an_accepted_alarm_frees_the_carer_and_tells_them() -> None:
    d, aid = pressed()
    d.act("cw-01", ActionKind.ACCEPT, aid)
    assert d.state.carers[f"{HZC.id}/cw-01"].busy_with == aid
    cmds = op(d, aid, OperatorOp.ASSIGN, carers=("cw-02",))
    assert any(isinstance(c, CancelOffer) and c.carer_id == "cw-01" for c in cmds)
    assert d.state.carers[f"{HZC.id}/cw-01"].busy_with is None
    a = d.state.alarms[aid]
    assert a.accepted_by == () and a.state is AlarmState.OFFERED
    assert a.deadline is not None  # the new offer times out like any other


def test_assign_a_pair_makes_the_alarm_double_handed() -> None:
    d, aid = pressed()
    cmds = op(d, aid, OperatorOp.ASSIGN, carers=("cw-01", "cw-02"))
    assert [o.carer_id for o in offers(cmds)] == ["cw-02"]  # cw-01 keeps the offer it has
    assert d.state.alarms[aid].double_handed


def test_accept_and_arrive_on_a_carers_behalf_then_the_carer_resolves() -> None:
    d, aid = pressed()
    op(d, aid, OperatorOp.ACCEPT, carers=("cw-01",))
    assert d.state.alarms[aid].state is AlarmState.ACCEPTED
    assert op(d, aid, OperatorOp.ACCEPT, carers=("cw-01",)) == []  # already
    op(d, aid, OperatorOp.ARRIVED, carers=("cw-01",))
    assert d.state.alarms[aid].state is AlarmState.ARRIVED
    d.act("cw-01", ActionKind.RESOLVED, aid, outcome=Outcome.ASSISTED)
    assert d.state.alarms[aid].state is AlarmState.RESOLVED


def test_accept_for_a_carer_without_a_live_offer_is_refused_and_the_room_told() -> None:
    d, aid = pressed()
    cmds = op(d, aid, OperatorOp.ACCEPT, carers=("cw-02",))
    [refused] = alerts(cmds, "operator_refused")
    assert "cw-02 has no live offer" in refused.message and "ops-anna" in refused.message
    assert d.state.alarms[aid].state is AlarmState.OFFERED


def test_escalate_now_offers_everyone_and_tells_the_room_once() -> None:
    d, aid = pressed()
    cmds = op(d, aid, OperatorOp.ESCALATE)
    assert d.state.alarms[aid].state is AlarmState.ESCALATED
    assert {o.carer_id for o in offers(cmds)} == {"cw-02"}  # cw-01 already holds one
    assert len(alerts(cmds, "escalated")) == 1
    assert op(d, aid, OperatorOp.ESCALATE) == []  # already escalated


def test_operator_resolves_with_outcome_and_note_and_every_carer_is_told() -> None:
    d, aid = pressed()
    cmds = op(d, aid, OperatorOp.RESOLVE, outcome=Outcome.FALSE_ALARM, note="spoke to her")
    a = d.state.alarms[aid]
    assert a.state is AlarmState.RESOLVED and a.outcome is Outcome.FALSE_ALARM
    assert a.note == "spoke to her" and a.offers == () and a.deadline is None
    [cancel] = [c for c in cmds if isinstance(c, CancelOffer)]
    assert cancel.carer_id == "cw-01" and "ops-anna" in cancel.reason
    done = [c for c in cmds if isinstance(c, RecordTransition) and c.state == "resolved"]
    assert done[0].detail["by"] == "ops-anna"
    assert op(d, aid, OperatorOp.RESOLVE, outcome=Outcome.FALSE_ALARM) == []  # already
    late = op(d, aid, OperatorOp.ASSIGN, carers=("cw-02",))
    [refused] = alerts(late, "operator_refused")
    assert "alarm already resolved" in refused.message


def test_other_needs_a_note() -> None:
    d, aid = pressed()
    [refused] = alerts(op(d, aid, OperatorOp.RESOLVE, outcome=Outcome.OTHER), "operator_refused")
    assert "needs a note" in refused.message
    assert d.state.alarms[aid].is_open


def test_a_note_goes_on_the_timeline_and_changes_nothing_else() -> None:
    d, aid = pressed()
    before = d.state.alarms[aid]
    cmds = op(d, aid, OperatorOp.NOTE, note="daughter on her way")
    [step] = [c for c in cmds if isinstance(c, RecordTransition)]
    assert step.detail["note"] == "daughter on her way"
    after = d.state.alarms[aid]
    assert after.state is before.state and after.deadline == before.deadline


def escalated() -> tuple[Driver, str]:
    d, aid = pressed()
    d.act("cw-01", ActionKind.DECLINE, aid)
    d.act("cw-02", ActionKind.DECLINE, aid)
    assert d.state.alarms[aid].state is AlarmState.ESCALATED
    return d, aid


def repeats(d: Driver, aid: str) -> list[Command]:
    return [
        c
        for c in fire_timer(d, aid)
        if isinstance(c, NotifyOnCall) or (isinstance(c, NotifyControlRoom) and c.alarm_id == aid)
    ]


def test_escalation_repeats_until_silenced_and_again_when_the_silence_ends() -> None:
    d, aid = escalated()
    assert repeats(d, aid)  # every two minutes: the alert log's repeated lines
    op(d, aid, OperatorOp.SILENCE, until=d.now + timedelta(minutes=10))
    for _ in range(4):
        cmds = fire_timer(d, aid)
        assert not [c for c in cmds if isinstance(c, NotifyControlRoom | NotifyOnCall)]
        assert d.state.alarms[aid].state is AlarmState.ESCALATED  # still offered to all
    d.now += timedelta(minutes=10)
    assert repeats(d, aid)


def test_acknowledge_holds_repeats_only_while_the_alarm_stays_in_that_state() -> None:
    d, aid = escalated()
    op(d, aid, OperatorOp.ACKNOWLEDGE)
    assert d.state.alarms[aid].acked_by == "ops-anna"
    assert repeats(d, aid) == []
    assert op(d, aid, OperatorOp.ACKNOWLEDGE) == []  # already
    # Accepted, then no arrival: a new kind of trouble, so the room hears it.
    a = d.state.alarms[aid]
    d.act(a.offers[0].carer_id, ActionKind.ACCEPT, aid)
    first = fire_timer(d, aid)
    assert alerts(first, "no_arrival")


def test_unsilence_lets_repeats_through_at_once() -> None:
    d, aid = escalated()
    op(d, aid, OperatorOp.SILENCE, until=d.now + timedelta(hours=1))
    assert repeats(d, aid) == []
    op(d, aid, OperatorOp.SILENCE, until=None)
    assert d.state.alarms[aid].silenced_until is None
    assert repeats(d, aid)


@pytest.mark.parametrize(
    "what",
    [OperatorOp.ASSIGN, OperatorOp.ESCALATE, OperatorOp.ACKNOWLEDGE, OperatorOp.SILENCE],
)
def test_a_test_call_needs_promoting_first(what: OperatorOp) -> None:
    from gateway.engine.model import DeviceModeIn

    d = Driver()
    d.login("cw-01", "A-012")
    dev = device_in("A-013")
    d.feed(DeviceModeIn(HZC.id, dev, d.now + timedelta(hours=1)))
    d.event(dev)
    [call] = d.state.alarms.values()
    inp = OperatorIn(HZC.id, call.alarm_id, what, "ops-anna", carers=("cw-01",))
    v = operator.check(HZC, call, inp, d.now)
    assert v.answer is operator.Answer.REFUSED and "promote it first" in v.reason
    assert not [c for c in d.feed(inp) if isinstance(c, SendOffer)]


def test_unknown_carer_and_unknown_alarm_are_refused() -> None:
    d, aid = pressed()
    bad = OperatorIn(HZC.id, aid, OperatorOp.ASSIGN, "ops-anna", ("cw-99",))
    assert operator.check(HZC, d.state.alarms[aid], bad, d.now).reason == (
        "no carer 'cw-99' in hazelhurst-court"
    )
    gone = OperatorIn(HZC.id, "nope", OperatorOp.NOTE, "ops-anna", note="x")
    assert operator.check(HZC, None, gone, d.now).answer is operator.Answer.REFUSED


def test_technical_faults_open_and_clear_on_their_own_terms() -> None:
    from gateway.engine.model import FaultClearIn, RaiseTechnical

    d = Driver()
    dev = device_in("A-013")
    key = f"{HZC.id}/{dev}"
    for kind in ("low_battery", "power_fail", "link_fail"):
        d.event(dev, kind)
    assert set(d.state.device_faults) == {
        f"{key}/low_battery",
        f"{key}/power_fail",
        f"{key}/link_fail",
    }
    since = d.state.device_faults[f"{key}/low_battery"]
    d.advance(60)
    d.event(dev, "low_battery")  # a repeat keeps the first "since"
    assert d.state.device_faults[f"{key}/low_battery"] == since
    d.event(dev, "power_restored")
    d.event(dev, "heartbeat")  # heard again: the link works
    assert set(d.state.device_faults) == {f"{key}/low_battery"}
    cmds = d.feed(FaultClearIn(HZC.id, dev, "low_battery", "ops-anna"))
    [cleared] = [c for c in cmds if isinstance(c, RaiseTechnical)]
    assert cleared.cleared and "ops-anna" in cleared.message
    assert d.state.device_faults == {}
    assert d.feed(FaultClearIn(HZC.id, dev, "low_battery", "ops-anna")) == []  # already


def test_device_faults_survive_a_restart() -> None:
    from gateway.engine import persist

    d = Driver()
    dev = device_in("A-013")
    d.event(dev, "tamper")
    back = persist.state_from_json(persist.state_to_json(d.state))
    assert back.device_faults == d.state.device_faults
    d2, aid = pressed()
    op(d2, aid, OperatorOp.SILENCE, until=d2.now + timedelta(minutes=5))
    op(d2, aid, OperatorOp.ACKNOWLEDGE)
    a = d2.state.alarms[aid]
    again = persist.alarm_from_json(persist.to_json(a))
    assert again == a
