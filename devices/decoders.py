"""Turn raw MQTT messages into canonical records, or refuse them with a reason.

Every decoder raises only :class:`DecodeError`. The gateway dead-letters the message with
``reason`` (a short stable code, used as a metric label) and ``detail`` (for people).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from devices import storable
from devices.events import EventKind
from devices.records import (
    ActionRecord,
    CalloutRecord,
    EventRecord,
    PresenceRecord,
    Record,
    RecordType,
    VisitRecord,
    event_key,
    record_key,
)
from devices.storable import Unstorable
from devices.topics import Channel, TopicLayout

__all__ = ["DecodeError", "Decoded", "Reason", "RecordType", "Registry", "decode_message"]

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
    UNKNOWN_VISIT = "unknown_visit"
    # Values the record cannot store (see devices.storable); same codes as storable.Refusal.
    INTEGER_OUT_OF_RANGE = "integer_out_of_range"
    NUL_CHARACTER = "nul_character"
    UNPAIRED_SURROGATE = "unpaired_surrogate"
    NON_FINITE_NUMBER = "non_finite_number"
    TOO_DEEP = "too_deep"
    TIME_OUT_OF_RANGE = "time_out_of_range"


class DecodeError(Exception):
    """A message the gateway will not accept, and why. The only exception a decoder raises."""

    def __init__(self, reason: Reason, detail: str, scheme: str | None = None) -> None:
        # The detail is stored and shown: it must itself be storable, whatever the input was.
        detail = storable.escape_text(detail[:500])
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.scheme = scheme


@dataclass(frozen=True, slots=True)
class Decoded:
    """One accepted record: ``key`` is its idempotency key, ``record`` the typed record."""

    record_type: RecordType
    scheme: str
    key: str
    record: Record

    @classmethod
    def of(cls, scheme: str, record: Record, key: str | None = None) -> Decoded:
        """A record with its type tag and (unless given) its natural idempotency key."""
        return cls(
            RecordType(record.record_type),
            scheme,
            key if key is not None else record_key(scheme, record),
            record,
        )


class Registry(Protocol):
    """What decoders need to know about schemes and devices."""

    def has_scheme(self, scheme: str) -> bool: ...

    def has_device(self, scheme: str, device_id: str) -> bool: ...

    def has_resident(self, scheme: str, client_ref: str) -> bool: ...

    def has_carer(self, scheme: str, carer_id: str) -> bool: ...

    def has_visit(self, scheme: str, visit_id: str) -> bool:
        """A visit of the scheme's schedule, or an extra one added tonight."""
        ...

    def zigbee_device(self, friendly_name: str) -> tuple[str, str] | None:
        """(scheme, device_id) of a Zigbee2MQTT friendly name, if registered."""
        ...


def _json(payload: bytes, scheme: str | None = None) -> Any:
    try:
        return storable.loads(payload.decode("utf-8"))
    except Unstorable as exc:
        raise DecodeError(Reason(exc.refusal.value), exc.detail, scheme) from exc
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise DecodeError(Reason.MALFORMED_JSON, str(exc)[:200], scheme) from exc


def _object(payload: bytes, scheme: str | None = None) -> dict[str, Any]:
    data = _json(payload, scheme)
    if not isinstance(data, dict):
        raise DecodeError(Reason.INVALID_PAYLOAD, "payload is not a JSON object", scheme)
    return data


def _summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _reason(exc: ValidationError) -> Reason:
    """A storage refusal found by the model (the Python path) keeps its specific reason."""
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, Unstorable):
            return Reason(cause.refusal.value)
        if err["type"] == "finite_number":
            return Reason.NON_FINITE_NUMBER
    return Reason.INVALID_PAYLOAD


M = TypeVar("M", bound=BaseModel)


def _validate(
    model: type[M],
    data: dict[str, Any],
    scheme: str | None = None,
    *,
    from_topic: dict[str, str] | None = None,
) -> M:
    """Validate a wire payload as its record model. Fields the gateway fills in itself (the
    record tag, the carer from the topic) may not come from the sender."""
    own = {"record_type", *(from_topic or {})}
    sent = sorted(own & data.keys())
    if sent:
        raise DecodeError(
            Reason.INVALID_PAYLOAD, f"{sent[0]}: Extra inputs are not permitted", scheme
        )
    try:
        return model.model_validate({**data, **(from_topic or {})})
    except ValidationError as exc:
        raise DecodeError(_reason(exc), _summary(exc), scheme) from exc


def decode_canonical(payload: bytes) -> EventRecord:
    """A canonical JSON device event (protocol v1)."""
    return _validate(EventRecord, _object(payload))


def decode_callout(payload: bytes) -> CalloutRecord:
    """A Careline call-out (protocol v1)."""
    return _validate(CalloutRecord, _object(payload))


def _zigbee_bool(data: dict[str, Any], key: str) -> bool | None:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise DecodeError(Reason.INVALID_PAYLOAD, f"{key}: expected true/false, got {value!r}")


def decode_zigbee(
    friendly_name: str, device_id: str, payload: bytes, received_at: datetime
) -> list[EventRecord]:
    """A Zigbee2MQTT door sensor's state report, as canonical events.

    Zigbee2MQTT publishes whole state, not events: ``contact`` becomes door_open/door_closed,
    ``battery_low``/``tamper`` when true become their events, and a report with none of those
    is a heartbeat. Event ids derive from ``last_seen`` when Zigbee2MQTT is configured to send
    it (``advanced.last_seen: ISO_8601``), so a redelivered report is recognised as a
    duplicate; without it each report gets a fresh id.
    """
    data = _object(payload)
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
        try:
            events.append(
                EventRecord(
                    event_id=event_id,
                    device_id=device_id,
                    kind=kind,
                    occurred_at=occurred_at,
                    battery_pct=round(battery) if battery is not None else None,
                    location="front_door",
                    detail={"source": "zigbee2mqtt", "linkquality": lq} if lq is not None else None,
                )
            )
        except ValidationError as exc:
            raise DecodeError(_reason(exc), _summary(exc)) from exc
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
        data = _object(payload, info.scheme)
        model: type[ActionRecord] | type[PresenceRecord]
        model = ActionRecord if info.channel is Channel.CARER_ACTION else PresenceRecord
        msg = _validate(model, data, info.scheme, from_topic={"carer_id": info.subject})
        return [Decoded.of(info.scheme, msg)]

    if info.channel is Channel.CARER_VISIT:
        assert info.subject is not None
        if not registry.has_carer(info.scheme, info.subject):
            raise DecodeError(Reason.UNKNOWN_CARER, f"carer {info.subject!r}", info.scheme)
        data = _object(payload, info.scheme)
        visit = _validate(VisitRecord, data, info.scheme, from_topic={"carer_id": info.subject})
        if not registry.has_visit(info.scheme, visit.visit_id):
            raise DecodeError(Reason.UNKNOWN_VISIT, f"visit {visit.visit_id!r}", info.scheme)
        return [Decoded.of(info.scheme, visit)]

    if info.channel is Channel.CALLOUT:
        callout = _validate(CalloutRecord, _object(payload, info.scheme), info.scheme)
        if not registry.has_resident(info.scheme, callout.resident_ref):
            raise DecodeError(
                Reason.UNKNOWN_RESIDENT, f"resident {callout.resident_ref!r}", info.scheme
            )
        return [Decoded.of(info.scheme, callout)]

    event = _validate(EventRecord, _object(payload, info.scheme), info.scheme)
    if event.device_id != info.subject:
        raise DecodeError(
            Reason.TOPIC_MISMATCH,
            f"payload device_id {event.device_id!r} on topic of {info.subject!r}",
            info.scheme,
        )
    if not registry.has_device(info.scheme, event.device_id):
        raise DecodeError(Reason.UNKNOWN_DEVICE, f"device {event.device_id!r}", info.scheme)
    return [_event_record(info.scheme, event)]


def _event_record(scheme: str, event: EventRecord) -> Decoded:
    return Decoded(
        RecordType.EVENT, scheme, event_key(scheme, event.device_id, event.event_id), event
    )
