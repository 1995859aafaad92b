"""The device protocol: canonical events, call-outs, Zigbee2MQTT, and every refusal reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.decoders import DecodeError, Reason, RecordType, decode_message
from devices.events import DeviceEvent, EventKind, json_schemas
from devices.records import EventRecord
from devices.topics import Channel, TopicLayout
from tests.fakes import FakeRegistry

LAYOUT = TopicLayout("telecare", "zigbee2mqtt")
NOW = datetime(2026, 11, 22, 2, 14, tzinfo=UTC)
TOPIC = "telecare/test-court/devices/pendant-001/events"


def event(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "event_id": str(uuid.uuid4()),
        "device_id": "pendant-001",
        "kind": "pendant_press",
        "occurred_at": "2026-11-22T02:14:05+00:00",
    }
    body.update(over)
    return body


def decode(topic: str, payload: bytes | dict[str, object], max_bytes: int = 4096):  # type: ignore[no-untyped-def]
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decode_message(
        topic, raw, layout=LAYOUT, registry=FakeRegistry(), received_at=NOW, max_bytes=max_bytes
    )


def reason_of(topic: str, payload: bytes | dict[str, object], **kw: int) -> Reason:
    with pytest.raises(DecodeError) as info:
        decode(topic, payload, **kw)
    return info.value.reason


def test_canonical_event_is_accepted_with_its_id_as_key() -> None:
    body = event(battery_pct=80, location="bedroom", seq=7)
    [rec] = decode(TOPIC, body)
    assert rec.record_type is RecordType.EVENT
    assert rec.scheme == "test-court"
    # De-duplication is per device: the key names the device as well as the event.
    assert rec.key == f"test-court/pendant-001/{body['event_id']}"
    assert isinstance(rec.record, EventRecord)
    assert rec.record.kind is EventKind.PENDANT_PRESS
    assert rec.record.battery_pct == 80


def test_offset_is_kept_and_naive_time_refused() -> None:
    [rec] = decode(TOPIC, event(occurred_at="2026-11-22T02:14:05+01:00"))
    assert isinstance(rec.record, EventRecord)
    assert rec.record.occurred_at.utcoffset() == timedelta(hours=1)
    assert reason_of(TOPIC, event(occurred_at="2026-11-22T02:14:05")) is Reason.INVALID_PAYLOAD


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b"{not json", Reason.MALFORMED_JSON),
        (TOPIC, b"\xff\xfe", Reason.MALFORMED_JSON),
        (TOPIC, b"[1, 2]", Reason.INVALID_PAYLOAD),
        (TOPIC, event(kind="explosion"), Reason.INVALID_PAYLOAD),
        (TOPIC, event(battery_pct="full"), Reason.INVALID_PAYLOAD),
        (TOPIC, event(event_id="not-a-uuid"), Reason.INVALID_PAYLOAD),
        (TOPIC, event(colour="red"), Reason.INVALID_PAYLOAD),
        (TOPIC, event(device_id="hub-001"), Reason.TOPIC_MISMATCH),
        (
            "telecare/test-court/devices/ghost/events",
            event(device_id="ghost"),
            Reason.UNKNOWN_DEVICE,
        ),
        ("telecare/other/devices/pendant-001/events", event(), Reason.UNKNOWN_SCHEME),
        ("telecare/test-court/devices/pendant-001/event", event(), Reason.WRONG_TOPIC),
        ("zigbee2mqtt/lounge-lamp", {"state": "ON"}, Reason.UNKNOWN_DEVICE),
    ],
)
def test_refusals_carry_their_reason(topic: str, payload: object, reason: Reason) -> None:
    assert reason_of(topic, payload) is reason  # type: ignore[arg-type]


def test_oversized_is_refused_before_parsing() -> None:
    assert reason_of(TOPIC, b"x" * 5000, max_bytes=4096) is Reason.OVERSIZED


def test_callout_is_keyed_by_scheme_and_reference() -> None:
    body = {
        "callout_id": "ARC-77",
        "resident_ref": "TST-0001",
        "reason": "Resident says she has fallen in the kitchen",
        "priority": "P1",
        "operator": "op-12",
        "requested_at": "2026-11-22T02:14:00Z",
    }
    [rec] = decode("telecare/test-court/careline/callouts", body)
    assert rec.record_type is RecordType.CALLOUT
    assert rec.key == "test-court/ARC-77"
    body["resident_ref"] = "TST-9999"
    assert reason_of("telecare/test-court/careline/callouts", body) is Reason.UNKNOWN_RESIDENT


def test_zigbee_door_open_with_last_seen_has_a_stable_id() -> None:
    payload = {
        "contact": False,
        "battery": 91,
        "battery_low": False,
        "tamper": False,
        "linkquality": 120,
        "last_seen": "2026-11-22T02:14:00+00:00",
    }
    [first] = decode("zigbee2mqtt/flat-1-front-door", payload)
    [again] = decode("zigbee2mqtt/flat-1-front-door", payload)
    assert isinstance(first.record, EventRecord)
    assert first.record.kind is EventKind.DOOR_OPEN
    assert first.record.device_id == "door-001"
    assert first.record.battery_pct == 91
    assert first.key == again.key


def test_zigbee_low_battery_and_tamper_become_events_and_plain_report_is_heartbeat() -> None:
    recs = decode(
        "zigbee2mqtt/flat-1-front-door", {"contact": True, "battery_low": True, "tamper": True}
    )
    kinds = [r.record.kind for r in recs if isinstance(r.record, EventRecord)]
    assert kinds == ["door_closed", "low_battery", "tamper"]
    [hb] = decode("zigbee2mqtt/flat-1-front-door", {"battery": 50, "linkquality": 80})
    assert isinstance(hb.record, EventRecord)
    assert hb.record.kind is EventKind.HEARTBEAT
    assert hb.record.occurred_at == NOW


@pytest.mark.parametrize(
    "payload",
    [{"contact": "open"}, {"battery": 140}, {"linkquality": "good"}, {"last_seen": "yesterday"}],
)
def test_zigbee_bad_fields_are_invalid(payload: dict[str, object]) -> None:
    assert reason_of("zigbee2mqtt/flat-1-front-door", payload) is Reason.INVALID_PAYLOAD


@given(
    st.binary(max_size=300),
    st.sampled_from(
        [
            TOPIC,
            "zigbee2mqtt/flat-1-front-door",
            "telecare/test-court/careline/callouts",
            "elsewhere/x",
        ]
    ),
)
def test_any_bytes_decode_or_raise_only_decode_error(payload: bytes, topic: str) -> None:
    try:
        decode(topic, payload)
    except DecodeError as exc:
        assert exc.reason in set(Reason)


def test_topic_layout_round_trips() -> None:
    info = LAYOUT.parse(LAYOUT.device_events("s1", "d1"))
    assert info is not None and info.channel is Channel.DEVICE_EVENT
    assert (info.scheme, info.subject) == ("s1", "d1")
    call = LAYOUT.parse(LAYOUT.callouts("s1"))
    assert call is not None and call.channel is Channel.CALLOUT
    assert LAYOUT.parse("telecare/s1/devices/d1") is None


def test_json_schema_is_exported_for_both_models() -> None:
    schemas = json_schemas()
    ev = schemas["device-event.v1.json"]
    assert set(ev["required"]) == {"event_id", "device_id", "kind", "occurred_at"}
    assert "pendant_press" in json.dumps(ev)
    assert "callout_id" in schemas["careline-callout.v1.json"]["properties"]
    # The documented example in docs/protocol.md must validate against the model.
    DeviceEvent.model_validate(event())


VISITS = "telecare/test-court/carers/cw-01/visits"


def visit(**over: object) -> dict[str, object]:
    body: dict[str, object] = {
        "v": 1,
        "visit_action_id": str(uuid.uuid4()),
        "action": "check_in",
        "visit_id": "v-01",
        "at": "2026-11-22T02:14:05+00:00",
    }
    body.update(over)
    return body


def test_a_visit_action_is_keyed_per_carer_with_the_carer_from_the_topic() -> None:
    body = visit()
    [rec] = decode(VISITS, body)
    assert rec.record_type is RecordType.VISIT
    assert rec.key == f"test-court/cw-01/visit/{body['visit_action_id']}"
    assert LAYOUT.parse(VISITS) is not None
    assert LAYOUT.parse(VISITS).channel is Channel.CARER_VISIT  # type: ignore[union-attr]
    [fr] = decode(VISITS, visit(action="frustrated", reason="no_access", note="key safe empty"))
    assert fr.record_type is RecordType.VISIT


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (VISITS, visit(visit_id="nope"), Reason.UNKNOWN_VISIT),
        ("telecare/test-court/carers/ghost/visits", visit(), Reason.UNKNOWN_CARER),
        (VISITS, visit(action="frustrated"), Reason.INVALID_PAYLOAD),  # needs a reason
        (VISITS, visit(reason="no_access"), Reason.INVALID_PAYLOAD),  # only with frustrated
        (VISITS, visit(action="wave"), Reason.INVALID_PAYLOAD),
        (VISITS, visit(carer_id="cw-02"), Reason.INVALID_PAYLOAD),  # the topic names the carer
        (VISITS, visit(note="x" * 1001), Reason.INVALID_PAYLOAD),
        (VISITS, visit(note="a\u0000b"), Reason.NUL_CHARACTER),
        (VISITS, b"{", Reason.MALFORMED_JSON),
    ],
)
def test_visit_refusals_carry_their_reason(topic: str, payload: object, reason: Reason) -> None:
    assert reason_of(topic, payload) is reason  # type: ignore[arg-type]
