"""Test windows (maintenance mode) through the pure core: nothing swallowed, nobody paged,
a fire is real, one operator action makes a test call real, and an expired window ends itself."""

from __future__ import annotations

from datetime import timedelta

from devices.events import Priority
from devices.registry import DeviceType
from gateway.engine.model import (
    AlarmState,
    DeviceModeIn,
    NotifyControlRoom,
    PromoteIn,
    RecordTransition,
    TickIn,
)
from tests.engine_helpers import HZC, Driver, device_in, offers


def alerts(cmds: list[object], code: str) -> list[NotifyControlRoom]:
    return [c for c in cmds if isinstance(c, NotifyControlRoom) and c.code == code]


def in_window(device: str, minutes: int = 60) -> Driver:
    d = Driver()
    d.login("cw-01", "A-012")
    d.login("cw-02", "B-050")
    started = d.feed(DeviceModeIn(HZC.id, device, d.now + timedelta(minutes=minutes)))
    [told] = alerts(started, "test_window_started")
    assert device in told.message
    return d


def test_a_press_in_a_test_window_is_a_test_call_for_the_control_room_not_a_page() -> None:
    dev = device_in("A-013")
    d = in_window(dev)
    cmds = d.event(dev)
    assert offers(cmds) == []
    [call] = [a for a in d.state.alarms.values() if a.device_id == dev]
    assert call.state is AlarmState.TEST_CALL and call.on_board and not call.is_open
    assert call.priority is Priority.P1  # what it would have been: shown if it is promoted
    [alert] = alerts(cmds, "test_call")
    assert alert.alarm_id == call.alarm_id and dev in alert.message
    # Recorded as a step of its own (alarm_events), with the event that caused it.
    [step] = [c for c in cmds if isinstance(c, RecordTransition)]
    assert step.state == AlarmState.TEST_CALL and step.alarm_id == call.alarm_id
    # Every other device pages as normal.
    assert offers(d.event(device_in("A-014")))


def test_repeated_test_presses_join_one_test_call_and_each_is_recorded() -> None:
    dev = device_in("A-013")
    d = in_window(dev)
    d.event(dev)
    d.advance(10)
    cmds = d.event(dev)
    [call] = [a for a in d.state.alarms.values() if a.device_id == dev]
    assert call.count == 2 and len(call.event_ids) == 2
    assert [c.state for c in cmds if isinstance(c, RecordTransition)] == ["test_call"]
    assert len(alerts(cmds, "test_call")) == 1


def test_promoting_a_test_call_raises_it_and_offers_it_at_once() -> None:
    dev = device_in("A-013")
    d = in_window(dev)
    d.event(dev)
    [call] = [a for a in d.state.alarms.values() if a.device_id == dev]
    d.advance(30)
    cmds = d.feed(PromoteIn(HZC.id, call.alarm_id, "op-1"))
    steps = [c.state for c in cmds if isinstance(c, RecordTransition)]
    assert steps[:3] == ["promoted", AlarmState.RAISED, AlarmState.OFFERED]
    [offer] = offers(cmds)
    assert offer.carer_id == "cw-01" and offer.alarm_id == call.alarm_id
    a = d.state.alarms[call.alarm_id]
    assert a.is_open and a.opened_at == call.opened_at  # response time counts from the press
    # A second promote (a double click) changes nothing and says why.
    again = d.feed(PromoteIn(HZC.id, call.alarm_id, "op-1"))
    assert offers(again) == [] and alerts(again, "promote_refused")


def test_a_fire_during_a_test_window_is_always_real() -> None:
    smoke = device_in("A-013", DeviceType.SMOKE)
    d = in_window(smoke)
    cmds = d.event(smoke, "smoke")
    [a] = [x for x in d.state.alarms.values() if x.device_id == smoke]
    assert a.is_open and a.priority is Priority.P0
    assert {o.role for o in offers(cmds)} == {"all"} and alerts(cmds, "fire")
    assert "a fire is real" in a.reason


def test_an_expired_window_ends_itself_and_the_control_room_sees_it() -> None:
    dev = device_in("A-013")
    d = in_window(dev, minutes=10)
    d.advance(9 * 60)
    d.heartbeat_all()
    assert not alerts(d.feed(TickIn()), "test_window_ended")
    d.advance(61)
    d.heartbeat_all()
    [ended] = alerts(d.feed(TickIn()), "test_window_ended")
    assert dev in ended.message and "expired" in ended.message
    assert not d.state.device_mode
    assert offers(d.event(dev))  # pages again


def test_an_expired_window_ends_on_the_next_event_even_before_a_tick() -> None:
    dev = device_in("A-013")
    d = in_window(dev, minutes=10)
    d.advance(11 * 60)
    d.heartbeat_all()
    cmds = d.event(dev)
    assert alerts(cmds, "test_window_ended") and offers(cmds)


def test_ending_a_window_early_is_told_once() -> None:
    dev = device_in("A-013")
    d = in_window(dev)
    cmds = d.feed(DeviceModeIn(HZC.id, dev, None))
    [ended] = alerts(cmds, "test_window_ended")
    assert "ended by the control room" in ended.message
    assert not alerts(d.feed(DeviceModeIn(HZC.id, dev, None)), "test_window_ended")


def test_an_unpromoted_test_call_leaves_the_board_after_the_closed_keep_time() -> None:
    dev = device_in("A-013")
    d = in_window(dev, minutes=5)
    d.event(dev)
    [call] = [a for a in d.state.alarms.values() if a.device_id == dev]
    d.advance(d.core.config.closed_keep_s + 10)
    d.feed(TickIn())
    assert call.alarm_id not in d.state.alarms
