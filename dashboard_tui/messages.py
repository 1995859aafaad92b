"""Typed messages between the workers, the widgets and the app."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from dashboard_tui.client import CarerStatus
from dashboard_tui.models import (
    Alarm,
    Alert,
    Carer,
    ClockReading,
    DeviceHealth,
    DeviceHealthBoard,
    Readiness,
    SchemeKpi,
)


@dataclass
class Snapshot(Message):
    """One successful poll: everything the main screen shows, read together."""

    readiness: Readiness
    clock: ClockReading
    alarms: list[Alarm]
    carers: list[Carer]
    # Read in the same poll, but optional: the figures need the database, and an older
    # gateway may not serve them. ``*_error`` says why they are missing.
    devices: DeviceHealthBoard | None = None
    kpi: list[SchemeKpi] | None = None
    devices_error: str | None = None
    kpi_error: str | None = None


@dataclass
class PollFailed(Message):
    """A poll got no usable answer; ``unreachable`` when there was no HTTP answer at all."""

    reason: str
    unreachable: bool


@dataclass
class StreamUp(Message):
    """The alert stream is connected (its ``hello`` arrived)."""


@dataclass
class StreamLost(Message):
    """The alert stream dropped or could not connect; the worker retries in ``retry_in_s``."""

    reason: str
    retry_in_s: float


@dataclass
class AlertArrived(Message):
    alert: Alert


@dataclass
class AlarmOpened(Message):
    """The operator chose an alarm to look into."""

    alarm_id: str


@dataclass
class CarerStatusRequested(Message):
    """The operator asked to set a carer's status (control-room override)."""

    scheme: str
    carer_id: str
    status: CarerStatus


@dataclass
class ActionRequested(Message):
    """The operator pressed an action key on the alarm board (``action`` is the API's)."""

    action: str
    alarm: Alarm


@dataclass
class DeviceActionRequested(Message):
    """The operator pressed an action key on the device-health panel."""

    action: str  # test_window, clear_fault
    device: DeviceHealth
