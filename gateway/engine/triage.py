"""Triage: what one device event (or Careline call-out) means, under a scheme's policy.

Pure: no I/O, no clock. ``triage_event`` takes the scheme-local time of the event (the caller
converts with ``Scheme.tz``) and returns a ``Triage``: which queue, which priority, and the flags
the dispatcher needs. ``TriagePolicy`` holds every tunable number; a scheme overrides it with a
``triage:`` mapping read by ``load_policy``. The defaults are described for scheme managers in
``docs/triage.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.events import CarelineCallout, EventKind, Priority
from devices.registry import Device
from devices.scheme import Resident, RiskFlag

__all__ = [
    "DEFAULT_KIND_PRIORITY",
    "PRIORITISED_KINDS",
    "Queue",
    "Triage",
    "TriagePolicy",
    "cancel_priority",
    "is_night",
    "load_policy",
    "triage_callout",
    "triage_event",
]


class Queue(StrEnum):
    """Where a triaged event goes."""

    ALARM = "alarm"  # a page to carers
    TECHNICAL = "technical"  # day team / control room queue, never a night page
    RECORD = "record"  # recorded only
    CLEAR = "clear"  # clears or answers something open
    CANCEL = "cancel"  # the resident's own cancel


@dataclass(frozen=True, slots=True)
class Triage:
    """The decision for one event; ``reason`` is shown in the decision record."""

    queue: Queue
    priority: Priority | None  # None for RECORD, CLEAR and CANCEL
    alert_control_room: bool = False  # P0 (fire): the control room at once
    double_handed: bool = False  # needs a pair of carers
    defer_s: int | None = None  # open only if not cleared within this many seconds
    reason: str = ""


_ALARM_KINDS = (
    EventKind.PENDANT_PRESS,
    EventKind.FALL_DETECTED,
    EventKind.SMOKE,
    EventKind.HEAT,
    EventKind.CO,
    EventKind.FLOOD,
    EventKind.DOOR_OPEN,
    EventKind.BED_EXIT,
    EventKind.CHAIR_EXIT,
    EventKind.CARER_NON_ARRIVAL,
)
_TECHNICAL_KINDS = frozenset(
    {EventKind.LOW_BATTERY, EventKind.TAMPER, EventKind.POWER_FAIL, EventKind.LINK_FAIL}
)
_CLEAR_KINDS = frozenset(
    {
        EventKind.DOOR_CLOSED,
        EventKind.BED_RETURN,
        EventKind.CHAIR_RETURN,
        EventKind.POWER_RESTORED,
    }
)
_RECORD_KINDS = frozenset({EventKind.HEARTBEAT, EventKind.TEST})
_FIRE_KINDS = frozenset({EventKind.SMOKE, EventKind.HEAT, EventKind.CO})

#: Kinds whose priority comes from ``TriagePolicy.kind_priority``. Inactivity has its own
#: field; record, clear and cancel kinds carry no priority.
PRIORITISED_KINDS: frozenset[EventKind] = frozenset(_ALARM_KINDS) | _TECHNICAL_KINDS
# Kinds that are a call for help whatever the time: from a device in a test window each one
# reaches the control room as a test call, even when triage would only record it.
ALARM_KINDS: frozenset[EventKind] = frozenset(_ALARM_KINDS)

DEFAULT_KIND_PRIORITY: Mapping[EventKind, Priority] = {
    EventKind.PENDANT_PRESS: Priority.P1,
    EventKind.FALL_DETECTED: Priority.P1,
    EventKind.SMOKE: Priority.P0,
    EventKind.HEAT: Priority.P0,
    EventKind.CO: Priority.P0,
    EventKind.FLOOD: Priority.P2,
    EventKind.DOOR_OPEN: Priority.P1,
    EventKind.BED_EXIT: Priority.P2,
    EventKind.CHAIR_EXIT: Priority.P2,
    EventKind.CARER_NON_ARRIVAL: Priority.P1,
    EventKind.LOW_BATTERY: Priority.P3,
    EventKind.TAMPER: Priority.P3,
    EventKind.POWER_FAIL: Priority.P3,
    EventKind.LINK_FAIL: Priority.P3,
}
assert set(DEFAULT_KIND_PRIORITY) == PRIORITISED_KINDS

_RANK = {p: i for i, p in enumerate(Priority)}  # P0 most urgent


def _more_urgent(a: Priority, b: Priority) -> Priority:
    return a if _RANK[a] <= _RANK[b] else b


class TriagePolicy(BaseModel):
    """A scheme's triage rules. Every field has a default; a scheme file overrides any of them.

    Unknown keys are refused, so a misspelt setting is reported instead of silently ignored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    night_start: time = Field(
        default=time(23, 0),
        description="Scheme-local start of the night window (inclusive). Default 23:00. "
        "Write it quoted in YAML ('23:00').",
    )
    night_end: time = Field(
        default=time(7, 0),
        description="Scheme-local end of the night window (exclusive). Default 07:00. "
        "The window may cross midnight.",
    )
    merge_window_s: int = Field(
        default=300,
        ge=0,
        description="Seconds: repeated presses/alarms for the same resident within this time "
        "merge into the alarm already open instead of paging again. Default 300 (5 min); "
        "0 turns merging off.",
    )
    bed_exit_return_s: int = Field(
        default=1200,
        gt=0,
        description="Seconds: a bed exit at night becomes an alarm only if the resident is not "
        "back in bed within this time. Default 1200 (20 min).",
    )
    chair_exit_return_s: int = Field(
        default=1800,
        gt=0,
        description="Seconds: a chair exit at night becomes an alarm only if the resident is "
        "not back in the chair within this time. Default 1800 (30 min).",
    )
    inactivity_priority: Priority = Field(
        default=Priority.P2,
        description="Priority of an inactivity (no movement) alarm. Default P2.",
    )
    technical_page_for_sole_alarm: bool = Field(
        default=True,
        description="If true (default), a technical fault (low battery, tamper, power or link "
        "failure) on the only alarm device of a high_risk resident pages carers as "
        "sole_alarm_technical_priority instead of waiting in the technical queue.",
    )
    sole_alarm_technical_priority: Priority = Field(
        default=Priority.P2,
        description="Priority of that page (see technical_page_for_sole_alarm). Default P2.",
    )
    cancel_welfare_check: bool = Field(
        default=True,
        description="If true (default), a resident's own cancel downgrades the open alarm to "
        "cancel_downgrade_to but a carer still makes a welfare check; if false it closes it.",
    )
    cancel_downgrade_to: Priority = Field(
        default=Priority.P3,
        description="Priority an open alarm drops to when the resident cancels it and a "
        "welfare check is still needed. Default P3.",
    )
    maintenance_default_s: int = Field(
        default=3600,
        gt=0,
        description="Seconds a device stays in maintenance mode (its events recorded, not "
        "paged) when no end is given. Default 3600 (1 h).",
    )
    double_handed_kinds: frozenset[EventKind] = Field(
        default=frozenset({EventKind.PENDANT_PRESS, EventKind.FALL_DETECTED}),
        description="Alarm kinds that need a pair of carers when the resident has the "
        "double_handed risk flag. Default: pendant_press and fall_detected.",
    )
    kind_priority: dict[EventKind, Priority] = Field(
        default_factory=lambda: dict(DEFAULT_KIND_PRIORITY),
        description="Priority per event kind. A scheme lists only the kinds it changes; the "
        "rest keep their defaults (pendant_press/fall_detected P1; smoke/heat/co P0; "
        "flood P2; door_open P1 (wandering resident at night); bed_exit/chair_exit P2 "
        "(at night); low_battery/tamper/power_fail/link_fail P3). Any alarm at P0 also "
        "alerts the control room at once.",
    )

    @field_validator("night_start", "night_end", mode="before")
    @classmethod
    def _time_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 23:00 as the base-60 number 1380, which pydantic would take
        # as 1380 seconds (00:23). Refuse numbers rather than guess.
        if isinstance(value, bool | int | float):
            raise ValueError(f"write the time as quoted text such as '23:00', not {value!r}")
        return value

    @field_validator("night_start", "night_end")
    @classmethod
    def _naive_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give a scheme-local time without a time zone")
        return value

    @field_validator("kind_priority", mode="before")
    @classmethod
    def _merge_defaults(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {**{k.value: v for k, v in DEFAULT_KIND_PRIORITY.items()}, **value}

    @field_validator("kind_priority")
    @classmethod
    def _only_prioritised(cls, value: dict[EventKind, Priority]) -> dict[EventKind, Priority]:
        stray = sorted(k.value for k in value if k not in PRIORITISED_KINDS)
        if stray:
            raise ValueError(
                f"these kinds take no priority here: {', '.join(stray)} "
                "(inactivity uses inactivity_priority; record/clear/cancel kinds have none)"
            )
        return value

    @model_validator(mode="after")
    def _window_not_empty(self) -> Self:
        if self.night_start == self.night_end:
            raise ValueError("night_start and night_end are equal, so the night window is empty")
        return self


def load_policy(data: Mapping[str, Any] | None) -> TriagePolicy:
    """A policy from a scheme's ``triage:`` mapping; ``None`` gives the defaults.

    Raises ``pydantic.ValidationError`` for an unknown key or a bad value.
    """
    if data is None:
        return TriagePolicy()
    return TriagePolicy.model_validate(dict(data))


def is_night(policy: TriagePolicy, local_t: time) -> bool:
    """True if the scheme-local time is in [night_start, night_end), crossing midnight or not."""
    t = local_t.replace(tzinfo=None)
    start, end = policy.night_start, policy.night_end
    if start < end:
        return start <= t < end
    return t >= start or t < end


def cancel_priority(policy: TriagePolicy) -> Priority | None:
    """What a resident's cancel does to the open alarm: the priority it drops to (a welfare
    check is still due), or ``None`` when the cancel closes it."""
    return policy.cancel_downgrade_to if policy.cancel_welfare_check else None


def _has(resident: Resident | None, flag: RiskFlag) -> bool:
    return resident is not None and flag in resident.risk_flags


def _alarm(
    priority: Priority,
    reason: str,
    *,
    double_handed: bool = False,
    defer_s: int | None = None,
) -> Triage:
    return Triage(
        queue=Queue.ALARM,
        priority=priority,
        alert_control_room=priority is Priority.P0,
        double_handed=double_handed,
        defer_s=defer_s,
        reason=reason,
    )


def _where(device: Device | None, resident: Resident | None) -> str:
    if resident is not None:
        return f"resident {resident.client_ref}"
    if device is not None and device.flat is not None:
        return f"flat {device.flat}"
    if device is not None:
        return "communal device"
    return "unknown device"


def triage_event(
    policy: TriagePolicy,
    kind: EventKind,
    *,
    device: Device | None,
    resident: Resident | None,
    local_dt: datetime,
    sole_alarm_device: bool = False,
) -> Triage:
    """Decide what one device event means.

    ``local_dt`` is the event time in the scheme's zone. ``resident`` is the device's resident
    (or the flat's), ``None`` for a communal or unassigned device, which still triages by kind.
    ``sole_alarm_device`` says the device is the resident's only way to raise an alarm.
    """
    where = _where(device, resident)
    night = is_night(policy, local_dt.time())
    when = "at night" if night else "by day"

    if kind in _RECORD_KINDS:
        return Triage(Queue.RECORD, None, reason=f"{kind.value}: recorded")
    if kind in _CLEAR_KINDS:
        return Triage(Queue.CLEAR, None, reason=f"{kind.value}: clears the open {where} alert")
    if kind is EventKind.CANCEL:
        downgrade = cancel_priority(policy)
        what = (
            f"open alarm drops to {downgrade.value}, welfare check still due"
            if downgrade is not None
            else "closes the open alarm"
        )
        return Triage(Queue.CANCEL, None, reason=f"cancel by {where}: {what}")
    if kind is EventKind.INACTIVITY:
        return _alarm(policy.inactivity_priority, f"inactivity for {where}")

    priority = policy.kind_priority[kind]

    if kind in _TECHNICAL_KINDS:
        if (
            policy.technical_page_for_sole_alarm
            and sole_alarm_device
            and _has(resident, RiskFlag.HIGH_RISK)
        ):
            paged = _more_urgent(priority, policy.sole_alarm_technical_priority)
            return _alarm(
                paged,
                f"{kind.value} on the only alarm device of high-risk {where}: "
                f"paged as {paged.value} because they cannot call for help",
            )
        return Triage(
            Queue.TECHNICAL, priority, reason=f"{kind.value} for {where}: technical queue"
        )

    if kind is EventKind.DOOR_OPEN:
        if night and _has(resident, RiskFlag.WANDERING):
            return _alarm(priority, f"door opened at night by {where} at risk of wandering")
        why = "by day" if not night else "resident not flagged wandering"
        return Triage(Queue.RECORD, None, reason=f"door opened ({why}): recorded")

    if kind in (EventKind.BED_EXIT, EventKind.CHAIR_EXIT):
        if not night:
            return Triage(Queue.RECORD, None, reason=f"{kind.value} by day: recorded")
        defer = (
            policy.bed_exit_return_s if kind is EventKind.BED_EXIT else policy.chair_exit_return_s
        )
        return _alarm(
            priority,
            f"{kind.value} at night for {where}: alarm if no return within {defer} s",
            defer_s=defer,
        )

    double = kind in policy.double_handed_kinds and _has(resident, RiskFlag.DOUBLE_HANDED)
    reason = f"{kind.value} for {where} {when}"
    if kind in _FIRE_KINDS:
        reason += ": fire alarm"
    if double:
        reason += "; double-handed resident, needs two carers"
    return _alarm(priority, reason, double_handed=double)


def triage_callout(
    policy: TriagePolicy, callout: CarelineCallout, resident: Resident | None
) -> Triage:
    """A Careline call-out: always an alarm at the operator's priority."""
    double = _has(resident, RiskFlag.DOUBLE_HANDED)
    who = resident.client_ref if resident is not None else f"unknown {callout.resident_ref}"
    text = callout.reason if len(callout.reason) <= 80 else callout.reason[:77] + "..."
    reason = f"Careline call-out {callout.callout_id} for {who} by {callout.operator}: {text}"
    if double:
        reason += "; double-handed resident, needs two carers"
    return _alarm(callout.priority, reason, double_handed=double)
