"""Devices: test/maintenance mode, and the device-health queue (technical faults)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from api_models.common import Shape


class MaintenanceIn(Shape):
    minutes: int | None = Field(
        default=None, ge=0, le=7 * 24 * 60, description="0 ends it; default: the policy's."
    )


class MaintenanceAccepted(Shape):
    status: str = "accepted"
    until: datetime | None = None


class ProblemKind(StrEnum):
    """A device problem, most urgent first (the order of the health queue)."""

    OFFLINE = "offline"  # missed heartbeats: the gateway has not heard it for 3 intervals
    POWER_FAIL = "power_fail"
    LINK_FAIL = "link_fail"
    TAMPER = "tamper"
    LOW_BATTERY = "low_battery"
    TEST_WINDOW = "test_window"  # in a test window: its alarms come as test calls


class DeviceProblem(Shape):
    kind: ProblemKind
    since: datetime | None = Field(description="When it started (offline: last heard).")
    detail: str = ""


class DeviceHealth(Shape):
    """One device with at least one problem (``GET /api/v1/devices/health``)."""

    scheme: str
    device_id: str
    type: str
    flat_id: str | None = None
    location: str | None = None
    last_heard: datetime | None = None
    heartbeat_s: int = Field(description="Seconds between the heartbeats the scheme expects.")
    missed_heartbeats: int = 0
    test_window_until: datetime | None = None
    problems: tuple[DeviceProblem, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.scheme}/{self.device_id}"


class DeviceHealthBoard(Shape):
    """The technical-fault queue, apart from alarms: most urgent problem first, then oldest."""

    now: datetime
    devices: tuple[DeviceHealth, ...] = ()
    counts: dict[str, int] = Field(
        default_factory=dict, description="Devices per problem kind (a device may count twice)."
    )
    total_devices: int = 0
