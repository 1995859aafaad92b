"""Triage policy and decisions: every event kind, the night window, and scheme overrides."""

from __future__ import annotations

from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from devices.events import CarelineCallout, EventKind, Priority
from devices.registry import Device, DeviceType
from devices.scheme import Resident, RiskFlag, Scheme, load_scheme
from gateway.engine.triage import (
    DEFAULT_KIND_PRIORITY,
    Queue,
    Triage,
    TriagePolicy,
    cancel_priority,
    is_night,
    load_policy,
    triage_callout,
    triage_event,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hazelhurst-court.yaml"
DEFAULT = TriagePolicy()
NIGHT = datetime(2025, 1, 15, 2, 30)
DAY = datetime(2025, 1, 15, 14, 0)


@pytest.fixture(scope="module")
def scheme() -> Scheme:
    return load_scheme(EXAMPLE)


def resident_with(scheme: Scheme, flag: RiskFlag, *, without: RiskFlag | None = None) -> Resident:
    return next(
        r
        for r in scheme.residents
        if flag in r.risk_flags and (without is None or without not in r.risk_flags)
    )


def plain_resident(scheme: Scheme) -> Resident:
    return next(r for r in scheme.residents if not r.risk_flags)


def device_of(scheme: Scheme, resident: Resident, dtype: DeviceType) -> Device:
    return next(
        d
        for d in scheme.devices
        if d.type is dtype and (d.resident == resident.client_ref or d.flat == resident.flat)
    )


COMMUNAL = Device(device_id="hzc-lounge-smoke", type=DeviceType.SMOKE, location="lounge")

# kind -> (queue by night, priority by night, queue by day, priority by day) for a resident
# with no risk flags.
EXPECTED: dict[EventKind, tuple[Queue, Priority | None, Queue, Priority | None]] = {
    EventKind.PENDANT_PRESS: (Queue.ALARM, Priority.P1, Queue.ALARM, Priority.P1),
    EventKind.FALL_DETECTED: (Queue.ALARM, Priority.P1, Queue.ALARM, Priority.P1),
    EventKind.DOOR_OPEN: (Queue.RECORD, None, Queue.RECORD, None),
    EventKind.DOOR_CLOSED: (Queue.CLEAR, None, Queue.CLEAR, None),
    EventKind.BED_EXIT: (Queue.ALARM, Priority.P2, Queue.RECORD, None),
    EventKind.BED_RETURN: (Queue.CLEAR, None, Queue.CLEAR, None),
    EventKind.CHAIR_EXIT: (Queue.ALARM, Priority.P2, Queue.RECORD, None),
    EventKind.CHAIR_RETURN: (Queue.CLEAR, None, Queue.CLEAR, None),
    EventKind.INACTIVITY: (Queue.ALARM, Priority.P2, Queue.ALARM, Priority.P2),
    EventKind.SMOKE: (Queue.ALARM, Priority.P0, Queue.ALARM, Priority.P0),
    EventKind.HEAT: (Queue.ALARM, Priority.P0, Queue.ALARM, Priority.P0),
    EventKind.CO: (Queue.ALARM, Priority.P0, Queue.ALARM, Priority.P0),
    EventKind.FLOOD: (Queue.ALARM, Priority.P2, Queue.ALARM, Priority.P2),
    EventKind.LOW_BATTERY: (Queue.TECHNICAL, Priority.P3, Queue.TECHNICAL, Priority.P3),
    EventKind.TAMPER: (Queue.TECHNICAL, Priority.P3, Queue.TECHNICAL, Priority.P3),
    EventKind.POWER_FAIL: (Queue.TECHNICAL, Priority.P3, Queue.TECHNICAL, Priority.P3),
    EventKind.POWER_RESTORED: (Queue.CLEAR, None, Queue.CLEAR, None),
    EventKind.LINK_FAIL: (Queue.TECHNICAL, Priority.P3, Queue.TECHNICAL, Priority.P3),
    EventKind.HEARTBEAT: (Queue.RECORD, None, Queue.RECORD, None),
    EventKind.TEST: (Queue.RECORD, None, Queue.RECORD, None),
    EventKind.CANCEL: (Queue.CANCEL, None, Queue.CANCEL, None),
    EventKind.CARER_NON_ARRIVAL: (Queue.ALARM, Priority.P1, Queue.ALARM, Priority.P1),
}


def test_table_covers_every_kind() -> None:
    assert set(EXPECTED) == set(EventKind)


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_triages_by_night_and_day(scheme: Scheme, kind: EventKind) -> None:
    res = plain_resident(scheme)
    dev = device_of(scheme, res, DeviceType.PENDANT)
    nq, np_, dq, dp = EXPECTED[kind]
    for when, queue, prio in ((NIGHT, nq, np_), (DAY, dq, dp)):
        got = triage_event(DEFAULT, kind, device=dev, resident=res, local_dt=when)
        assert isinstance(got, Triage)
        assert (got.queue, got.priority) == (queue, prio), (kind, when)
        assert got.reason
        assert got.alert_control_room == (prio is Priority.P0 and queue is Queue.ALARM)
        assert not got.double_handed
        if got.queue in (Queue.RECORD, Queue.CLEAR, Queue.CANCEL):
            assert got.priority is None


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_kind_triages_without_resident_or_device(kind: EventKind) -> None:
    for dev in (COMMUNAL, None):
        got = triage_event(DEFAULT, kind, device=dev, resident=None, local_dt=NIGHT)
        assert isinstance(got.queue, Queue)


@pytest.mark.parametrize("kind", [EventKind.SMOKE, EventKind.HEAT, EventKind.CO])
def test_communal_fire_is_p0_with_control_room(kind: EventKind) -> None:
    got = triage_event(DEFAULT, kind, device=COMMUNAL, resident=None, local_dt=DAY)
    assert got == Triage(Queue.ALARM, Priority.P0, alert_control_room=True, reason=got.reason)
    assert "communal" in got.reason


@pytest.mark.parametrize(
    ("hhmm", "night"),
    [
        (time(22, 59), False),
        (time(22, 59, 59, 999999), False),
        (time(23, 0), True),
        (time(0, 0), True),
        (time(6, 59), True),
        (time(6, 59, 59), True),
        (time(7, 0), False),
        (time(12, 0), False),
    ],
)
def test_night_window_edges(hhmm: time, night: bool) -> None:
    assert is_night(DEFAULT, hhmm) is night


def test_night_window_not_crossing_midnight() -> None:
    policy = load_policy({"night_start": "01:00", "night_end": "05:00"})
    assert not is_night(policy, time(0, 59))
    assert is_night(policy, time(1, 0))
    assert is_night(policy, time(4, 59))
    assert not is_night(policy, time(5, 0))
    assert not is_night(policy, time(23, 30))


def test_aware_local_time_uses_wall_clock() -> None:
    assert is_night(DEFAULT, time(23, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("when", "queue"),
    [
        (datetime(2025, 1, 15, 22, 59), Queue.RECORD),
        (datetime(2025, 1, 15, 23, 0), Queue.ALARM),
        (datetime(2025, 1, 16, 6, 59), Queue.ALARM),
        (datetime(2025, 1, 16, 7, 0), Queue.RECORD),
        (DAY, Queue.RECORD),
    ],
)
def test_wandering_door(scheme: Scheme, when: datetime, queue: Queue) -> None:
    res = resident_with(scheme, RiskFlag.WANDERING)
    dev = device_of(scheme, res, DeviceType.DOOR_CONTACT)
    got = triage_event(DEFAULT, EventKind.DOOR_OPEN, device=dev, resident=res, local_dt=when)
    assert got.queue is queue
    assert got.priority is (Priority.P1 if queue is Queue.ALARM else None)


def test_door_at_night_for_non_wandering_resident_is_recorded(scheme: Scheme) -> None:
    res = plain_resident(scheme)
    got = triage_event(DEFAULT, EventKind.DOOR_OPEN, device=None, resident=res, local_dt=NIGHT)
    assert (got.queue, got.priority) == (Queue.RECORD, None)
    assert "wandering" in got.reason


def test_bed_and_chair_exit_defer(scheme: Scheme) -> None:
    res = plain_resident(scheme)
    bed = triage_event(DEFAULT, EventKind.BED_EXIT, device=None, resident=res, local_dt=NIGHT)
    chair = triage_event(DEFAULT, EventKind.CHAIR_EXIT, device=None, resident=res, local_dt=NIGHT)
    assert bed.defer_s == 1200
    assert chair.defer_s == 1800
    day = triage_event(DEFAULT, EventKind.BED_EXIT, device=None, resident=res, local_dt=DAY)
    assert day.defer_s is None


@pytest.mark.parametrize("kind", [EventKind.PENDANT_PRESS, EventKind.FALL_DETECTED])
def test_double_handed_resident(scheme: Scheme, kind: EventKind) -> None:
    res = resident_with(scheme, RiskFlag.DOUBLE_HANDED)
    got = triage_event(DEFAULT, kind, device=None, resident=res, local_dt=NIGHT)
    assert got.double_handed
    assert got.priority is Priority.P1
    assert "two carers" in got.reason
    smoke = triage_event(DEFAULT, EventKind.SMOKE, device=None, resident=res, local_dt=NIGHT)
    assert not smoke.double_handed


TECHNICAL = [EventKind.LOW_BATTERY, EventKind.TAMPER, EventKind.POWER_FAIL, EventKind.LINK_FAIL]


@pytest.mark.parametrize("kind", TECHNICAL)
def test_sole_device_high_risk_technical_pages(scheme: Scheme, kind: EventKind) -> None:
    res = resident_with(scheme, RiskFlag.HIGH_RISK)
    dev = device_of(scheme, res, DeviceType.PENDANT)
    got = triage_event(
        DEFAULT, kind, device=dev, resident=res, local_dt=NIGHT, sole_alarm_device=True
    )
    assert (got.queue, got.priority) == (Queue.ALARM, Priority.P2)
    assert "only alarm device" in got.reason and "high-risk" in got.reason


@pytest.mark.parametrize("kind", TECHNICAL)
def test_technical_stays_technical_otherwise(scheme: Scheme, kind: EventKind) -> None:
    high = resident_with(scheme, RiskFlag.HIGH_RISK)
    cases: list[tuple[TriagePolicy, Resident | None, bool]] = [
        (DEFAULT, high, False),  # not the sole device
        (DEFAULT, plain_resident(scheme), True),  # not high risk
        (DEFAULT, None, True),  # no resident
        (load_policy({"technical_page_for_sole_alarm": False}), high, True),  # turned off
    ]
    for policy, res, sole in cases:
        got = triage_event(
            policy, kind, device=None, resident=res, local_dt=NIGHT, sole_alarm_device=sole
        )
        assert (got.queue, got.priority) == (Queue.TECHNICAL, Priority.P3)


def test_sole_device_escalation_never_lowers_priority(scheme: Scheme) -> None:
    policy = load_policy({"kind_priority": {"link_fail": "P1"}})
    res = resident_with(scheme, RiskFlag.HIGH_RISK)
    got = triage_event(
        policy,
        EventKind.LINK_FAIL,
        device=None,
        resident=res,
        local_dt=NIGHT,
        sole_alarm_device=True,
    )
    assert (got.queue, got.priority) == (Queue.ALARM, Priority.P1)


def callout(ref: str, priority: Priority) -> CarelineCallout:
    return CarelineCallout(
        callout_id="ARC-2025-0001",
        resident_ref=ref,
        reason="Resident reports chest pain, ambulance called, please attend",
        priority=priority,
        operator="op-17",
        requested_at=datetime(2025, 1, 15, 2, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize("priority", list(Priority))
def test_callout_uses_operator_priority(scheme: Scheme, priority: Priority) -> None:
    res = plain_resident(scheme)
    got = triage_callout(DEFAULT, callout(res.client_ref, priority), res)
    assert (got.queue, got.priority) == (Queue.ALARM, priority)
    assert got.alert_control_room is (priority is Priority.P0)
    assert not got.double_handed
    assert "ARC-2025-0001" in got.reason and "op-17" in got.reason


def test_callout_double_handed_and_unknown_resident(scheme: Scheme) -> None:
    res = resident_with(scheme, RiskFlag.DOUBLE_HANDED)
    assert triage_callout(DEFAULT, callout(res.client_ref, Priority.P2), res).double_handed
    unknown = triage_callout(DEFAULT, callout("NOBODY-1", Priority.P1), None)
    assert (unknown.queue, unknown.priority) == (Queue.ALARM, Priority.P1)
    assert "unknown" in unknown.reason


def test_cancel(scheme: Scheme) -> None:
    res = plain_resident(scheme)
    got = triage_event(DEFAULT, EventKind.CANCEL, device=None, resident=res, local_dt=NIGHT)
    assert "welfare" in got.reason
    assert cancel_priority(DEFAULT) is Priority.P3
    assert cancel_priority(load_policy({"cancel_welfare_check": False})) is None


def test_defaults() -> None:
    assert load_policy(None) == DEFAULT
    assert DEFAULT.night_start == time(23, 0) and DEFAULT.night_end == time(7, 0)
    assert DEFAULT.kind_priority == dict(DEFAULT_KIND_PRIORITY)
    for name, field in TriagePolicy.model_fields.items():
        assert field.description, name


def test_override_changes_priority_and_keeps_the_rest(scheme: Scheme) -> None:
    policy = load_policy(
        {"kind_priority": {"flood": "P1"}, "inactivity_priority": "P1", "bed_exit_return_s": 600}
    )
    assert policy.kind_priority[EventKind.FLOOD] is Priority.P1
    assert policy.kind_priority[EventKind.SMOKE] is Priority.P0  # untouched default kept
    res = plain_resident(scheme)
    flood = triage_event(policy, EventKind.FLOOD, device=None, resident=res, local_dt=DAY)
    assert flood.priority is Priority.P1
    inactive = triage_event(policy, EventKind.INACTIVITY, device=None, resident=res, local_dt=DAY)
    assert inactive.priority is Priority.P1
    bed = triage_event(policy, EventKind.BED_EXIT, device=None, resident=res, local_dt=NIGHT)
    assert bed.defer_s == 600


def test_override_from_yaml_text() -> None:
    data = yaml.safe_load(
        """
        night_start: "22:00"
        night_end: "08:00"
        kind_priority:
          pendant_press: P0
        """
    )
    policy = load_policy(data)
    assert is_night(policy, time(22, 0)) and is_night(policy, time(7, 30))
    got = triage_event(policy, EventKind.PENDANT_PRESS, device=None, resident=None, local_dt=DAY)
    assert got.priority is Priority.P0 and got.alert_control_room


@pytest.mark.parametrize(
    "data",
    [
        {"kind_priority": {"pendant_press": "P9"}},
        {"inactivity_priority": "P9"},
        {"kind_priority": {"not_a_kind": "P1"}},
        {"kind_priority": {"heartbeat": "P1"}},  # record kind: no priority
        {"kind_priority": {"inactivity": "P1"}},  # has its own field
        {"night_start": 1380},  # unquoted YAML 23:00
        {"night_start": "23:00+01:00"},
        {"night_start": "07:00"},  # equal to night_end: empty window
        {"merge_window_s": -1},
        {"bed_exit_return_s": 0},
        {"nigth_start": "22:00"},  # misspelt key
        {"double_handed_kinds": ["nonsense"]},
    ],
)
def test_invalid_policy_raises(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        load_policy(data)


def test_policy_is_frozen() -> None:
    with pytest.raises(ValidationError):
        DEFAULT.merge_window_s = 1  # type: ignore[misc]
