"""Alarm lifecycle through the pure core: timeouts, escalation, arrival, outcomes, supervision."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from devices.events import Priority
from devices.registry import DeviceType
from gateway.engine import carer_actions, deadline_rules
from gateway.engine.model import (
    ActionKind,
    ActionResult,
    AlarmState,
    CalloutIn,
    CancelOffer,
    CarelineStatus,
    DeadlineKind,
    DeviceModeIn,
    EventIn,
    FollowUpTask,
    NotifyControlRoom,
    NotifyOnCall,
    OperatorIn,
    OperatorOp,
    Outcome,
    PresenceIn,
    RaiseTechnical,
    RecordTransition,
    Remind,
    TickIn,
    TimerIn,
)
from tests.conftest import SCHEME
from tests.engine_helpers import HZC, Driver, device_in, offers, resident_with


def fire_due(d: Driver) -> list[object]:
    out: list[object] = []
    for a in list(d.state.alarms.values()):
        if a.is_open and a.deadline and a.deadline.due <= d.now:
            out += d.feed(TimerIn(a.alarm_id, a.deadline.epoch))
    return out


def two_carers() -> Driver:
    d = Driver()
    d.login("cw-01", "A-012")
    d.login("cw-02", "B-050")
    return d


def test_no_answer_in_60s_goes_to_the_next_carer_then_accept_arrive_resolve() -> None:
    d = two_carers()
    [first] = offers(d.event(device_in("A-013")))
    assert first.carer_id == "cw-01"
    a = first.alarm_id
    d.advance(59)
    d.heartbeat_all()
    assert not fire_due(d)
    d.advance(1)
    cmds = fire_due(d)
    assert any(isinstance(c, CancelOffer) and c.carer_id == "cw-01" for c in cmds)
    [second] = offers(cmds)  # type: ignore[arg-type]
    assert second.carer_id == "cw-02"
    # cw-01's stale accept is rejected with a reason; cw-02 accepts.
    [late] = [
        c
        for c in d.act("cw-01", ActionKind.ACCEPT, a, first.offer_id)
        if isinstance(c, ActionResult)
    ]
    assert not late.ok and "no longer live" in late.reason
    [ok] = [
        c
        for c in d.act("cw-02", ActionKind.ACCEPT, a, second.offer_id)
        if isinstance(c, ActionResult)
    ]
    assert ok.ok
    [dup] = [
        c
        for c in d.act("cw-02", ActionKind.ACCEPT, a, second.offer_id)
        if isinstance(c, ActionResult)
    ]
    assert dup.ok and dup.reason == "already accepted"
    d.advance(90)
    d.act("cw-02", ActionKind.ARRIVED, a)
    d.advance(300)
    d.act("cw-02", ActionKind.RESOLVED, a, outcome=Outcome.ASSISTED)
    alarm = d.state.alarms[a]
    assert alarm.state is AlarmState.RESOLVED and alarm.deadline is None
    steps = [c.state for c in d.log if isinstance(c, RecordTransition) and c.alarm_id == a]
    assert steps == [
        "raised",
        "offered",
        "offer_timeout",
        "offered",
        "accepted",
        "arrived",
        "resolved",
    ]
    assert d.state.carers[f"{HZC.id}/cw-02"].busy_with is None


def test_decline_moves_on_at_once_and_exhaustion_escalates_to_all_and_senior() -> None:
    d = two_carers()
    [first] = offers(d.event(device_in("A-013")))
    [second] = offers(d.act("cw-01", ActionKind.DECLINE, first.alarm_id, first.offer_id))
    assert second.carer_id == "cw-02"
    cmds = d.act("cw-02", ActionKind.DECLINE, second.alarm_id, second.offer_id)
    assert d.state.alarms[first.alarm_id].state is AlarmState.ESCALATED
    assert {o.carer_id for o in offers(cmds)} == {"cw-01", "cw-02"}
    assert all(o.role == "all" for o in offers(cmds))
    assert any(isinstance(c, NotifyControlRoom) and c.code == "escalated" for c in cmds)
    assert any(isinstance(c, NotifyOnCall) for c in cmds)
    # Still unanswered: the control room hears again when the repeat deadline fires.
    d.advance(121)
    d.heartbeat_all()
    again = fire_due(d)
    assert any(isinstance(c, NotifyControlRoom) and c.code == "escalated" for c in again)


def test_stale_timer_is_ignored() -> None:
    d = two_carers()
    [first] = offers(d.event(device_in("A-013")))
    epoch = d.state.alarms[first.alarm_id].epoch
    d.act("cw-01", ActionKind.ACCEPT, first.alarm_id, first.offer_id)
    d.advance(61)
    assert d.feed(TimerIn(first.alarm_id, epoch)) == []


def test_accepted_without_arrival_retriggers() -> None:
    d = two_carers()
    [first] = offers(d.event(device_in("A-013")))
    d.act("cw-01", ActionKind.ACCEPT, first.alarm_id, first.offer_id)
    due = d.state.alarms[first.alarm_id].deadline
    assert due is not None
    d.now = due.due
    cmds = fire_due(d)
    assert any(isinstance(c, Remind) and c.carer_id == "cw-01" for c in cmds)
    assert any(isinstance(c, NotifyControlRoom) and c.code == "no_arrival" for c in cmds)


def test_unable_to_gain_access_never_closes_silently() -> None:
    d = two_carers()
    [o] = offers(d.event(device_in("A-013")))
    d.act("cw-01", ActionKind.ACCEPT, o.alarm_id, o.offer_id)
    [early] = [
        c
        for c in d.act("cw-01", ActionKind.RESOLVED, o.alarm_id, outcome=Outcome.ASSISTED)
        if isinstance(c, ActionResult)
    ]
    assert not early.ok and "arrived" in early.reason
    d.act("cw-01", ActionKind.ARRIVED, o.alarm_id)
    cmds = d.act("cw-01", ActionKind.RESOLVED, o.alarm_id, outcome=Outcome.UNABLE_TO_GAIN_ACCESS)
    assert any(isinstance(c, FollowUpTask) and c.kind == "no_response" for c in cmds)
    assert any(isinstance(c, NotifyControlRoom) and c.code == "unable_to_gain_access" for c in cmds)
    assert any(isinstance(c, NotifyOnCall) for c in cmds)


def test_repeated_presses_merge_and_fire_alerts_control_room() -> None:
    d = two_carers()
    dev = device_in("A-013")
    [o] = offers(d.event(dev))
    d.advance(20)
    assert offers(d.event(dev)) == []
    assert d.state.alarms[o.alarm_id].count == 2
    smoke = d.event(device_in("A-020", DeviceType.SMOKE), "smoke")
    assert any(isinstance(c, NotifyControlRoom) and c.priority is Priority.P0 for c in smoke)
    assert {x.role for x in offers(smoke)} == {"all"}


def test_maintenance_mode_pages_nobody_for_that_device_only() -> None:
    d = two_carers()
    dev = device_in("A-013")
    d.feed(DeviceModeIn(HZC.id, dev, d.now + timedelta(hours=1)))
    assert offers(d.event(dev)) == []
    assert offers(d.event(device_in("A-014")))


def test_nobody_logged_in_is_a_p1_for_the_control_room_at_once() -> None:
    d = Driver()
    d.login("cw-01", "A-012")
    cmds = d.feed(PresenceIn(HZC.id, "cw-01", "logout"))
    [alert] = [c for c in cmds if isinstance(c, NotifyControlRoom)]
    assert alert.code == "no_carer_available" and alert.priority is Priority.P1
    assert not [c for c in d.feed(TickIn()) if isinstance(c, NotifyControlRoom)]  # not repeated


def test_silent_handset_drops_out_of_routing_and_is_reported() -> None:
    d = two_carers()
    d.advance(121)
    d.feed(PresenceIn(HZC.id, "cw-02", "heartbeat"))
    cmds = d.feed(TickIn())
    assert any(isinstance(c, NotifyControlRoom) and c.code == "handset_silent" for c in cmds)
    [o] = offers(d.event(device_in("A-013")))
    assert o.carer_id == "cw-02"


def test_silent_hub_raises_no_contact_within_three_intervals_and_clears() -> None:
    d = two_carers()
    resident = resident_with("high_risk")
    hub = device_in(resident.flat, DeviceType.HUB)
    for _ in range(3):
        d.advance(60)
        for dev in HZC.devices:
            if dev.type is DeviceType.HUB and dev.device_id != hub:
                d.event(dev.device_id, "heartbeat")
        d.heartbeat_all()
        assert not [c for c in d.feed(TickIn()) if isinstance(c, RaiseTechnical)]
    d.advance(5)
    cmds = d.feed(TickIn())
    raised = [c for c in cmds if isinstance(c, RaiseTechnical)]
    assert [c.device_id for c in raised] == [hub]
    welfare = [a for a in d.state.alarms.values() if a.kind == "no_contact"]
    assert len(welfare) == 1 and welfare[0].priority is Priority.P2
    cleared = d.event(hub, "heartbeat")
    assert any(isinstance(c, RaiseTechnical) and c.cleared for c in cleared)
    assert d.state.alarms[welfare[0].alarm_id].state is AlarmState.CANCELLED


def test_careline_callout_gets_a_status_at_each_step() -> None:
    d = two_carers()
    resident = resident_with("falls")
    cmds = d.feed(
        CalloutIn(HZC.id, "ARC-1", resident.client_ref, Priority.P1, "fallen", d.now, d.now)
    )
    [o] = offers(cmds)
    d.act(o.carer_id, ActionKind.ACCEPT, o.alarm_id, o.offer_id)
    d.act(o.carer_id, ActionKind.ARRIVED, o.alarm_id)
    d.act(o.carer_id, ActionKind.RESOLVED, o.alarm_id, outcome=Outcome.FALL_NO_INJURY_LIFTED)
    statuses = [c for c in d.log if isinstance(c, CarelineStatus)]
    assert [s.status for s in statuses] == [
        "received",
        "offered",
        "accepted",
        "arrived",
        "resolved",
    ]
    assert statuses[2].eta_s is not None and statuses[-1].outcome == "fall_no_injury_lifted"


def test_bed_exit_at_night_waits_for_return_before_paging() -> None:
    d = two_carers()
    bed = next((x for x in HZC.devices if x.type is DeviceType.BED_SENSOR), None)
    if bed is None:  # the example has no bed sensors; use the triage rule through a pendant flat
        return
    assert offers(d.event(bed.device_id, "bed_exit")) == []


def test_a_bed_exit_with_no_return_is_offered_when_its_wait_runs_out() -> None:
    d = two_carers()
    assert offers(d.event(device_in("A-013"), "bed_exit")) == []
    [a] = d.state.alarms.values()
    assert a.state is AlarmState.RAISED and a.deadline is not None
    assert a.deadline.kind is DeadlineKind.DEFER
    d.advance((a.deadline.due - d.now).total_seconds() - 1)
    assert fire_due(d) == []  # still within the wait
    d.advance(1)
    d.heartbeat_all()  # the carers' handsets are still live when the wait runs out
    cmds = fire_due(d)
    steps = [c.state for c in cmds if isinstance(c, RecordTransition)]
    assert steps == ["defer_expired", AlarmState.OFFERED]
    assert [o.carer_id for o in offers(cmds)] == ["cw-01"]  # type: ignore[arg-type]


def test_a_bed_return_within_the_wait_cancels_the_bed_exit() -> None:
    d = two_carers()
    d.event(device_in("A-013"), "bed_exit")
    d.advance(30)
    cmds = d.event(device_in("A-013"), "bed_return")
    [a] = d.state.alarms.values()
    assert a.state is AlarmState.CANCELLED and a.deadline is None
    [t] = [c for c in cmds if isinstance(c, RecordTransition)]
    assert t.detail == {"reason": "cleared by bed_return"}
    d.advance(3600)
    assert fire_due(d) == [] and offers(d.log) == []


def test_a_carer_long_on_site_is_checked_on_until_the_control_room_acknowledges() -> None:
    d = two_carers()
    [o] = offers(d.event(device_in("A-013")))
    d.act("cw-01", ActionKind.ACCEPT, o.alarm_id, o.offer_id)
    d.act("cw-01", ActionKind.ARRIVED, o.alarm_id)
    a = d.state.alarms[o.alarm_id]
    assert a.deadline is not None and a.deadline.kind is DeadlineKind.ON_SITE

    def checks() -> list[NotifyControlRoom]:
        d.advance(a.chain.on_site_check_s)
        return [c for c in fire_due(d) if isinstance(c, NotifyControlRoom)]

    assert [c.code for c in checks()] == ["long_on_site"]
    assert [c.code for c in checks()] == ["long_on_site"]  # and again, an hour later
    d.feed(OperatorIn(HZC.id, o.alarm_id, OperatorOp.ACKNOWLEDGE, "op-1"))
    assert checks() == []  # held once acknowledged; the deadline still repeats
    live = d.state.alarms[o.alarm_id]
    assert live.state is AlarmState.ARRIVED and live.deadline is not None
    assert live.deadline.kind is DeadlineKind.ON_SITE


def test_fire_in_a_flat_with_an_open_call_is_its_own_p0_alarm() -> None:
    d = two_carers()
    [o] = offers(d.event(device_in("A-013")))
    cmds = d.event(device_in("A-013", DeviceType.SMOKE), "smoke")
    fire = [a for a in d.state.alarms.values() if a.kind == "smoke"]
    assert len(fire) == 1 and fire[0].priority is Priority.P0 and fire[0].alarm_id != o.alarm_id
    assert any(isinstance(c, NotifyControlRoom) and c.code == "fire" for c in cmds)


def test_a_carer_holding_a_p1_cannot_drop_it_for_another_p1() -> None:
    d = two_carers()
    [first] = offers(d.event(device_in("A-013")))
    d.act("cw-01", ActionKind.ACCEPT, first.alarm_id, first.offer_id)
    [other] = offers(d.event(device_in("B-050")))
    assert other.carer_id == "cw-02"
    d.act("cw-02", ActionKind.DECLINE, other.alarm_id, other.offer_id)  # -> everyone on shift
    bcast = [o for o in offers(d.log) if o.alarm_id == other.alarm_id and o.carer_id == "cw-01"]
    assert bcast and bcast[-1].role == "all"
    [res] = [
        c
        for c in d.act("cw-01", ActionKind.ACCEPT, other.alarm_id, bcast[-1].offer_id)
        if isinstance(c, ActionResult)
    ]
    assert not res.ok and "finish it first" in res.reason
    assert d.state.alarms[first.alarm_id].accepted_by == ("cw-01",)


def test_scheme_triage_section_overrides_the_default_policy() -> None:
    from devices.scheme import parse_scheme
    from gateway.engine.core import Core

    text = SCHEME.read_text() + "\ntriage:\n  kind_priority: {pendant_press: P2}\n"
    scheme = parse_scheme(text, "override.yaml")
    d = Driver(core=Core({scheme.id: scheme}))
    d.login("cw-01", "A-012")
    d.event(device_in("A-013"))
    [a] = d.state.alarms.values()
    assert a.priority is Priority.P2


def test_a_late_decline_of_an_old_offer_does_not_withdraw_the_newer_one() -> None:
    d = Driver()
    d.login("cw-01", "A-012")
    [first] = offers(d.event(device_in("A-013")))
    d.advance(60)
    d.heartbeat_all()
    escalated = offers(fire_due(d))  # type: ignore[arg-type]
    [newer] = [o for o in escalated if o.carer_id == "cw-01"]
    assert newer.role == "all" and newer.offer_id != first.offer_id
    [res] = [
        c
        for c in d.act("cw-01", ActionKind.DECLINE, first.alarm_id, first.offer_id)
        if isinstance(c, ActionResult)
    ]
    assert not res.ok and res.reason == "offer no longer live"
    assert [o.offer_id for o in d.state.alarms[first.alarm_id].offers] == [newer.offer_id]


def test_signing_out_withdraws_live_offers_and_tells_the_handset() -> None:
    d = two_carers()
    [o] = offers(d.event(device_in("A-013")))
    cmds = d.feed(PresenceIn(HZC.id, "cw-01", "logout"))
    assert any(
        isinstance(c, CancelOffer) and c.offer_id == o.offer_id and c.reason == "signed out"
        for c in cmds
    )
    assert [x.carer_id for x in offers(cmds)] == ["cw-02"]


def _pair_offered() -> tuple[Driver, str, dict[str, str]]:
    d = two_carers()
    resident = resident_with("double_handed")
    sent = offers(d.event(device_in(resident.flat)))
    assert {o.carer_id for o in sent} == {"cw-01", "cw-02"}
    return d, sent[0].alarm_id, {o.carer_id: o.offer_id for o in sent}


def _first_resolves(d: Driver, alarm_id: str, ids: dict[str, str]) -> list[object]:
    d.act("cw-01", ActionKind.ACCEPT, alarm_id, ids["cw-01"])
    d.act("cw-01", ActionKind.ARRIVED, alarm_id)
    return list(d.act("cw-01", ActionKind.RESOLVED, alarm_id, outcome=Outcome.ASSISTED))


def _resident_cancels(d: Driver, alarm_id: str, ids: dict[str, str]) -> list[object]:
    from gateway.engine.triage import TriagePolicy

    d.core.policies[HZC.id] = TriagePolicy(cancel_welfare_check=False)
    device = d.state.alarms[alarm_id].device_id
    assert device is not None
    return list(d.event(device, "cancel"))


@pytest.mark.parametrize(
    ("close", "reason"),
    [(_first_resolves, "resolved by cw-01"), (_resident_cancels, "cancelled by resident")],
    ids=["first-of-pair-resolves", "resident-cancels"],
)
def test_closing_an_alarm_withdraws_every_live_offer_with_the_reason(
    close: Callable[[Driver, str, dict[str, str]], list[object]], reason: str
) -> None:
    d, alarm_id, ids = _pair_offered()
    cmds = close(d, alarm_id, ids)
    assert not d.state.alarms[alarm_id].is_open
    cancels = [c for c in cmds if isinstance(c, CancelOffer)]
    # cw-02 still held a live offer: it is withdrawn, naming why; nobody else is told twice.
    assert [(c.carer_id, c.offer_id, c.reason) for c in cancels if c.carer_id == "cw-02"] == [
        ("cw-02", ids["cw-02"], reason)
    ]
    assert all(c.reason == reason for c in cancels)


def test_a_pair_member_who_accepted_is_told_when_the_other_resolves() -> None:
    d, alarm_id, ids = _pair_offered()
    d.act("cw-01", ActionKind.ACCEPT, alarm_id, ids["cw-01"])
    d.act("cw-02", ActionKind.ACCEPT, alarm_id, ids["cw-02"])
    d.act("cw-01", ActionKind.ARRIVED, alarm_id)
    cmds = d.act("cw-01", ActionKind.RESOLVED, alarm_id, outcome=Outcome.ASSISTED)
    cancels = [c for c in cmds if isinstance(c, CancelOffer)]
    assert [(c.carer_id, c.offer_id, c.reason) for c in cancels] == [
        ("cw-02", f"{alarm_id}.held", "resolved by cw-01")
    ]
    assert d.state.carers["hazelhurst-court/cw-02"].busy_with is None


def test_night_is_judged_by_when_the_event_arrived_not_when_the_engine_got_to_it() -> None:
    """A backlog must not turn a 03:00 front-door exit into a daytime one."""
    d = Driver()  # 02:14, the night window
    d.login("cw-01", "A-012")
    flat = resident_with("wandering").flat
    door = device_in(flat, DeviceType.DOOR_CONTACT)
    arrived = d.now
    d.advance(6 * 3600)  # the engine reaches the event at 08:14, after the night has ended
    d.feed(EventIn(HZC.id, "door-1", door, "door_open", arrived, arrived))
    assert [(a.kind, a.priority) for a in d.state.alarms.values()] == [("door_open", Priority.P1)]
    # The same exit received by day is no alarm: the window really is what decides it.
    day = d.now
    d.feed(EventIn(HZC.id, "door-2", door, "door_open", day, day))
    assert len(d.state.alarms) == 1


def test_every_deadline_kind_and_carer_action_has_its_handler() -> None:
    """The engine's rule tables are complete: a kind without a handler would raise mid-step."""
    assert set(deadline_rules.HANDLERS) == set(DeadlineKind)
    assert set(carer_actions.HANDLERS) == set(ActionKind)
