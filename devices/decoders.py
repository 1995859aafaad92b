"""Turn raw MQTT messages into canonical records, or refuse them with a reason.

Every decoder raises only :class:`DecodeError`. The gateway dead-letters the message with
``reason`` (a short stable code, used as a metric label) and ``detail`` (for people).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from pydantic import ValidationError

from devices.events import CarelineCallout, DeviceEvent, EventKind
from devices.topics import Channel, TopicLayout
from responders.protocol import HandsetAction, HandsetPresence

# Namespace for event ids derived from Zigbee2MQTT state reports, which carry none.
ZIGBEE_NAMESPACE = uuid.UUID("5b6f3c1e-2f8a-4e55-9a64-0c9d1f3a7e21")


class Reason(StrEnum):
    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    INVALID_PAYLOAD = "invalid_payload"
    WRONG_TOPIC = "wrong_topic"
    TOPIC_MISMATCH = "topic_mismatch"
    UNKNOWN_SCHEME = "unknown_scheme"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_RESIDENT = "unknown_resident"
    UNKNOWN_CARER = "unknown_carer"


class DecodeError(Exception):
    """A message the gateway will not accept, and why."""

    def __init__(self, reason: Reason, detail: str, scheme: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.scheme = scheme


class RecordType(StrEnum):
    EVENT = "event"
    CALLOUT = "callout"
    ACTION = "action"
    PRESENCE = "presence"
    CONTROL = "control"  # control-room overrides entered through the API


@dataclass(frozen=True, slots=True)
class Decoded:
    """One accepted record: ``key`` is its idempotency key, ``body`` its canonical JSON."""

    record_type: RecordType
    scheme: str
    key: str
    body: dict[str, Any]


class Registry(Protocol):
    """What decoders need to know about schemes and devices."""

    def has_scheme(self, scheme: str) -> bool: ...

    def has_device(self, scheme: str, device_id: str) -> bool: ...

    def has_resident(self, scheme: str, client_ref: str) -> bool: ...

    def has_carer(self, scheme: str, carer_id: str) -> bool: ...

    def zigbee_device(self, friendly_name: str) -> tuple[str, str] | None:
        """(scheme, device_id) of a Zigbee2MQTT friendly name, if registered."""
        ...


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(Reason.MALFORMED_JSON, str(exc)[:200]) from exc


def _summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def decode_canonical(payload: bytes) -> DeviceEvent:
    """A canonical JSON device event (protocol v1)."""
    data = _json(payload)
    if not isinstance(data, dict):
        raise DecodeError(Reason.INVALID_PAYLOAD, "payload is not a JSON object")
    try:
        return DeviceEvent.model_validate(data)
    except ValidationError as exc:
        raise DecodeError(Reason.INVALID_PAYLOAD, _summary(exc)) from exc


def decode_callout(payload: bytes) -> CarelineCallout:
    """A Careline call-out (protocol v1)."""
    data = _json(payload)
    if not isinstance(data, dict):
        raise DecodeError(Reason.INVALID_PAYLOAD, "payload is not a JSON object")
    try:
        return CarelineCallout.model_validate(data)
    except ValidationError as exc:
        raise DecodeError(Reason.INVALID_PAYLOAD, _summary(exc)) from exc


def _zigbee_bool(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise DecodeError(Reason.INVALID_PAYLOAD, f"{key}: expected true/false, got {value!r}")


def decode_zigbee(
    friendly_name: str, device_id: str, payload: bytes, received_at: datetime
) -> list[DeviceEvent]:
    """A Zigbee2MQTT door sensor's state report, as canonical events.

    Zigbee2MQTT publishes whole state, not events: ``contact`` becomes door_open/door_closed,
    ``battery_low``/``tamper`` when true become their events, and a report with none of those
    is a heartbeat. Event ids derive from ``last_seen`` when Zigbee2MQTT is configured to send
    it (``advanced.last_seen: ISO_8601``), so a redelivered report is recognised as a
    duplicate; without it each report gets a fresh id.
    """
    data = _json(payload)
    if not isinstance(data, dict):
        raise DecodeError(Reason.INVALID_PAYLOAD, "payload is not a JSON object")
    contact = _zigbee_bool(data, "contact")
    battery_low = _zigbee_bool(data, "battery_low")
    tamper = _zigbee_bool(data, "tamper")
    battery = data.get("battery")
    if battery is not None and (
        isinstance(battery, bool) or not isinstance(battery, int | float) or not 0 <= battery <= 100
    ):
        raise DecodeError(Reason.INVALID_PAYLOAD, f"battery: expected 0-100, got {battery!r}")
    lq = data.get("linkquality")
    if lq is not None and (isinstance(lq, bool) or not isinstance(lq, int)):
        raise DecodeError(Reason.INVALID_PAYLOAD, f"linkquality: expected integer, got {lq!r}")
    last_seen = data.get("last_seen")
    occurred_at: datetime = received_at
    if last_seen is not None:
        try:
            occurred_at = datetime.fromisoformat(str(last_seen))
        except ValueError as exc:
            raise DecodeError(Reason.INVALID_PAYLOAD, f"last_seen: {exc}") from exc
        if occurred_at.tzinfo is None:
            raise DecodeError(Reason.INVALID_PAYLOAD, "last_seen: needs a UTC offset")

    kinds: list[EventKind] = []
    if contact is not None:
        kinds.append(EventKind.DOOR_CLOSED if contact else EventKind.DOOR_OPEN)
    if battery_low:
        kinds.append(EventKind.LOW_BATTERY)
    if tamper:
        kinds.append(EventKind.TAMPER)
    if not kinds:
        kinds.append(EventKind.HEARTBEAT)

    events = []
    for kind in kinds:
        if last_seen is not None:
            event_id = uuid.uuid5(ZIGBEE_NAMESPACE, f"{friendly_name}|{last_seen}|{kind}")
        else:
            event_id = uuid.uuid4()
        events.append(
            DeviceEvent(
                event_id=event_id,
                device_id=device_id,
                kind=kind,
                occurred_at=occurred_at,
                battery_pct=round(battery) if battery is not None else None,
                location="front_door",
                detail={"source": "zigbee2mqtt", "linkquality": lq} if lq is not None else None,
            )
        )
    return events


def decode_message(
    topic: str,
    payload: bytes,
    *,
    layout: TopicLayout,
    registry: Registry,
    received_at: datetime,
    max_bytes: int,
) -> list[Decoded]:
    """Decode one MQTT message into accepted records, or raise DecodeError."""
    if len(payload) > max_bytes:
        raise DecodeError(Reason.OVERSIZED, f"{len(payload)} bytes > limit {max_bytes}")
    info = layout.parse(topic)
    if info is None:
        raise DecodeError(Reason.WRONG_TOPIC, f"not a device, Careline or Zigbee topic: {topic}")

    if info.channel is Channel.ZIGBEE:
        assert info.subject is not None
        found = registry.zigbee_device(info.subject)
        if found is None:
            raise DecodeError(Reason.UNKNOWN_DEVICE, f"zigbee device {info.subject!r}")
        scheme, device_id = found
        events = decode_zigbee(info.subject, device_id, payload, received_at)
        return [_event_record(scheme, e) for e in events]

    assert info.scheme is not None
    if not registry.has_scheme(info.scheme):
        raise DecodeError(Reason.UNKNOWN_SCHEME, f"scheme {info.scheme!r} is not served here")

    if info.channel in (Channel.CARER_ACTION, Channel.CARER_PRESENCE):
        assert info.subject is not None
        if not registry.has_carer(info.scheme, info.subject):
            raise DecodeError(Reason.UNKNOWN_CARER, f"carer {info.subject!r}", info.scheme)
        data = _json(payload)
        if not isinstance(data, dict):
            raise DecodeError(Reason.INVALID_PAYLOAD, "payload is not a JSON object", info.scheme)
        model: type[HandsetAction] | type[HandsetPresence]
        model = HandsetAction if info.channel is Channel.CARER_ACTION else HandsetPresence
        try:
            msg = model.model_validate(data)
        except ValidationError as exc:
            raise DecodeError(Reason.INVALID_PAYLOAD, _summary(exc), info.scheme) from exc
        body = msg.model_dump(mode="json")
        body["carer_id"] = info.subject
        if isinstance(msg, HandsetAction):
            key = f"{info.scheme}/{info.subject}/{msg.action_id}"
            return [Decoded(RecordType.ACTION, info.scheme, key, body)]
        key = f"{info.scheme}/{info.subject}/{msg.presence_id}"
        return [Decoded(RecordType.PRESENCE, info.scheme, key, body)]

    if info.channel is Channel.CALLOUT:
        callout = decode_callout(payload)
        if not registry.has_resident(info.scheme, callout.resident_ref):
            raise DecodeError(
                Reason.UNKNOWN_RESIDENT, f"resident {callout.resident_ref!r}", info.scheme
            )
        return [
            Decoded(
                RecordType.CALLOUT,
                info.scheme,
                f"{info.scheme}/{callout.callout_id}",
                callout.model_dump(mode="json"),
            )
        ]

    event = decode_canonical(payload)
    if event.device_id != info.subject:
        raise DecodeError(
            Reason.TOPIC_MISMATCH,
            f"payload device_id {event.device_id!r} on topic of {info.subject!r}",
            info.scheme,
        )
    if not registry.has_device(info.scheme, event.device_id):
        raise DecodeError(Reason.UNKNOWN_DEVICE, f"device {event.device_id!r}", info.scheme)
    return [_event_record(info.scheme, event)]


def _event_record(scheme: str, event: DeviceEvent) -> Decoded:
    return Decoded(RecordType.EVENT, scheme, str(event.event_id), event.model_dump(mode="json"))
