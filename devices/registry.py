"""Device kinds and the per-device record held in a scheme file."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

IDENT = r"^[A-Za-z0-9._-]{1,64}$"  # also the API's path parameter pattern
Ident = Annotated[str, Field(pattern=IDENT)]
# Room codes as in devices.events (bedroom, front_door, ...), so events and devices agree.
RoomCode = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]
# A Zigbee2MQTT friendly name becomes an MQTT topic level: no wildcards, no edge slashes.
ZigbeeName = Annotated[str, Field(pattern=r"^[^+#/\x00]([^+#\x00]{0,126}[^+#/\x00])?$")]


class DeviceType(StrEnum):
    PENDANT = "pendant"
    FALL_DETECTOR = "fall_detector"
    DOOR_CONTACT = "door_contact"
    BED_SENSOR = "bed_sensor"
    CHAIR_SENSOR = "chair_sensor"
    PIR = "pir"
    SMOKE = "smoke"
    HEAT = "heat"
    CO = "co"
    FLOOD = "flood"
    HUB = "hub"


_BATTERY_S = 25 * 3600

# Hubs are mains powered and report every minute; battery sensors may sleep up to 25 h.
DEFAULT_HEARTBEAT_S: dict[DeviceType, int] = {
    t: (60 if t is DeviceType.HUB else _BATTERY_S) for t in DeviceType
}


class Device(BaseModel):
    """One installed device, tied to a resident (worn) or a flat (fixed), or neither (communal)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: Ident
    type: DeviceType
    resident: str | None = None
    flat: str | None = None
    location: RoomCode | None = None
    zigbee_friendly_name: ZigbeeName | None = None
    heartbeat_interval_s: int | None = Field(default=None, gt=0)

    @property
    def expected_heartbeat_s(self) -> int:
        """Seconds between heartbeats: the configured interval, else the type's default."""
        if self.heartbeat_interval_s is not None:
            return self.heartbeat_interval_s
        return DEFAULT_HEARTBEAT_S[self.type]
