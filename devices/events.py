"""The canonical device event and the Careline call-out: version 1 of the wire protocol.

Both are pydantic models; their JSON Schemas are exported by ``telecare protocol schema``
and documented in ``docs/protocol.md``. Unknown fields are refused rather than ignored, so a
device that sends a field we do not understand is noticed (dead-lettered) instead of having
part of its message silently dropped.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from devices.storable import StoredInt, StoredText, StoredTime, check_json

PROTOCOL_VERSION = 1

ROOM_CODE = r"^[a-z0-9_]{1,32}$"
DEVICE_ID = r"^[A-Za-z0-9._-]{1,64}$"


class EventKind(StrEnum):
    """What a device reports. Alarm kinds first, then technical ones."""

    PENDANT_PRESS = "pendant_press"
    FALL_DETECTED = "fall_detected"
    DOOR_OPEN = "door_open"
    DOOR_CLOSED = "door_closed"
    BED_EXIT = "bed_exit"
    BED_RETURN = "bed_return"
    CHAIR_EXIT = "chair_exit"
    CHAIR_RETURN = "chair_return"
    INACTIVITY = "inactivity"
    SMOKE = "smoke"
    HEAT = "heat"
    CO = "co"
    FLOOD = "flood"
    LOW_BATTERY = "low_battery"
    TAMPER = "tamper"
    POWER_FAIL = "power_fail"
    POWER_RESTORED = "power_restored"
    LINK_FAIL = "link_fail"
    HEARTBEAT = "heartbeat"
    TEST = "test"
    CANCEL = "cancel"
    # A planned time-critical visit nobody checked in to (the Tunstall Vi+ kind). The gateway
    # raises it itself from the visit plan (docs/visits.md); a home unit may report it too.
    CARER_NON_ARRIVAL = "carer_non_arrival"


class Priority(StrEnum):
    """P0 is fire (everyone, control room at once); P3 is the technical queue."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class DeviceEvent(BaseModel):
    """One thing one device saw, once. ``event_id`` is the idempotency key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = Field(default=1, description="Protocol version.")
    event_id: UUID = Field(description="Chosen by the device; a resend carries the same id.")
    device_id: str = Field(pattern=DEVICE_ID)
    kind: EventKind
    occurred_at: StoredTime = Field(description="RFC 3339 with an offset, device clock.")
    seq: StoredInt | None = Field(
        default=None, ge=0, description="Device message counter (fits a 64-bit signed integer)."
    )
    battery_pct: int | None = Field(default=None, ge=0, le=100)
    rssi: int | None = Field(default=None, ge=-150, le=20, description="dBm.")
    location: str | None = Field(default=None, pattern=ROOM_CODE, description="Room code.")
    detail: dict[str, Any] | None = Field(default=None, description="Vendor extras, small.")

    @field_validator("detail")
    @classmethod
    def _detail_is_small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) > 32:
            raise ValueError("detail has more than 32 keys")
        # No NUL, unpaired surrogate, NaN/Infinity, 64-bit overflow or deep nesting: jsonb.
        return check_json(value)  # type: ignore[no-any-return]


class CarelineCallout(BaseModel):
    """A Careline (ARC) operator asking for a mobile response to a resident."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    callout_id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="The ARC's reference.")
    resident_ref: str = Field(pattern=r"^[A-Z0-9-]{3,32}$", description="Council client ref.")
    reason: StoredText = Field(min_length=1, max_length=500)
    priority: Priority
    operator: StoredText = Field(
        min_length=1, max_length=64, description="Operator id, not a name."
    )
    requested_at: StoredTime
    notes: StoredText = Field(default="", max_length=2000)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schemas of every payload a device or the Careline sends."""
    return {
        "device-event.v1.json": DeviceEvent.model_json_schema(),
        "careline-callout.v1.json": CarelineCallout.model_json_schema(),
    }
