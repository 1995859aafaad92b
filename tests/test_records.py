"""Types at the boundary: values the record cannot store are refused at decode time with their
own reason, every decoder raises only DecodeError, and de-duplication is per device."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from devices.decoders import Decoded, DecodeError, Reason, RecordType, decode_message
from devices.records import (
    RECORDS,
    ActionRecord,
    DeviceModeControl,
    EventRecord,
    PresenceRecord,
)
from devices.storable import Refusal, escape_json, escape_text
from devices.topics import TopicLayout
from gateway import shipper, storage
from gateway.engine.model import EventIn, RecordTransition
from gateway.engine.shell import to_input
from gateway.journal import Incoming, Journal
from tests.engine_helpers import HZC, NIGHT, Driver, device_in
from tests.fakes import FakeRegistry

LAYOUT = TopicLayout("telecare", "zigbee2mqtt")
NOW = datetime(2026, 11, 22, 2, 14, tzinfo=UTC)
DEVICE = "telecare/test-court/devices/pendant-001/events"
CALLOUT = "telecare/test-court/careline/callouts"
ACTION = "telecare/test-court/carers/cw-01/actions"
PRESENCE = "telecare/test-court/carers/cw-01/presence"
ZIGBEE = "zigbee2mqtt/flat-1-front-door"


def decode(topic: str, raw: bytes) -> list[Decoded]:
    return decode_message(
        topic, raw, layout=LAYOUT, registry=FakeRegistry(), received_at=NOW, max_bytes=1 << 20
    )


def reason(topic: str, raw: bytes) -> Reason:
    with pytest.raises(DecodeError) as info:
        decode(topic, raw)
    return info.value.reason


def event_json(**extra: str) -> bytes:
    """A canonical event with raw JSON fragments spliced in (json.dumps cannot write them)."""
    fields = {
        "event_id": f'"{uuid.uuid4()}"',
        "device_id": '"pendant-001"',
        "kind": '"pendant_press"',
        "occurred_at": '"2026-11-22T02:14:05+00:00"',
        **extra,
    }
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode()


def callout_json(**extra: str) -> bytes:
    fields = {
        "callout_id": '"ARC-1"',
        "resident_ref": '"TST-0001"',
        "reason": '"fallen"',
        "priority": '"P1"',
        "operator": '"op-1"',
        "requested_at": '"2026-11-22T02:14:00Z"',
        **extra,
    }
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode()


def action_json(**extra: str) -> bytes:
    fields = {
        "action_id": f'"{uuid.uuid4()}"',
        "action": '"resolved"',
        "alarm_id": '"a-1"',
        "outcome": '"assisted"',
        "at": '"2026-11-22T02:20:00Z"',
        **extra,
    }
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode()


def presence_json(**extra: str) -> bytes:
    fields = {
        "presence_id": f'"{uuid.uuid4()}"',
        "what": '"heartbeat"',
        "at": '"2026-11-22T02:20:00Z"',
        **extra,
    }
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}").encode()


DEEP = "[" * 2000 + "]" * 2000


@pytest.mark.parametrize(
    ("topic", "raw", "expected"),
    [
        # Integers outside the column (seq is bigint) or any 64-bit integer.
        (DEVICE, event_json(seq=str(2**64 - 1)), Reason.INTEGER_OUT_OF_RANGE),
        (DEVICE, event_json(seq=str(2**63)), Reason.INTEGER_OUT_OF_RANGE),
        (DEVICE, event_json(detail='{"n": ' + "9" * 5000 + "}"), Reason.INTEGER_OUT_OF_RANGE),
        (DEVICE, event_json(seq="-" + "1" * 30), Reason.INTEGER_OUT_OF_RANGE),
        (ZIGBEE, b'{"linkquality": 99999999999999999999999}', Reason.INTEGER_OUT_OF_RANGE),
        # NUL and unpaired surrogates, in values and in keys.
        (DEVICE, event_json(detail='{"x": "a\\u0000b"}'), Reason.NUL_CHARACTER),
        (DEVICE, event_json(detail='{"a\\u0000": 1}'), Reason.NUL_CHARACTER),
        (DEVICE, event_json(detail='{"x": "\\ud800"}'), Reason.UNPAIRED_SURROGATE),
        (DEVICE, event_json(detail='{"x": ["\\udfff"]}'), Reason.UNPAIRED_SURROGATE),
        (CALLOUT, callout_json(notes='"call \\u0000 back"'), Reason.NUL_CHARACTER),
        (CALLOUT, callout_json(reason='"\\ud83d"'), Reason.UNPAIRED_SURROGATE),
        (ACTION, action_json(note='"key safe \\u0000"'), Reason.NUL_CHARACTER),
        (ACTION, action_json(note='"\\udc00"'), Reason.UNPAIRED_SURROGATE),
        (PRESENCE, presence_json(flat='"a\\u0000"'), Reason.NUL_CHARACTER),
        # NaN and infinities, spelled or overflowing, anywhere.
        (PRESENCE, presence_json(x="NaN", y="1"), Reason.NON_FINITE_NUMBER),
        (PRESENCE, presence_json(x="1", y="Infinity"), Reason.NON_FINITE_NUMBER),
        (PRESENCE, presence_json(x="-Infinity"), Reason.NON_FINITE_NUMBER),
        (PRESENCE, presence_json(x="1e999"), Reason.NON_FINITE_NUMBER),
        (DEVICE, event_json(detail='{"t": NaN}'), Reason.NON_FINITE_NUMBER),
        (DEVICE, event_json(detail='{"t": [1, {"u": -1e400}]}'), Reason.NON_FINITE_NUMBER),
        (ZIGBEE, b'{"battery": NaN}', Reason.NON_FINITE_NUMBER),
        # Nesting: far beyond the limit (Python's parser would recurse) and just beyond it.
        (DEVICE, DEEP.encode(), Reason.TOO_DEEP),
        (DEVICE, event_json(detail='{"d": ' + "[" * 20 + "]" * 20 + "}"), Reason.TOO_DEEP),
        (CALLOUT, ('{"a":' * 3000 + "1" + "}" * 3000).encode(), Reason.TOO_DEEP),
        (ZIGBEE, DEEP.encode(), Reason.TOO_DEEP),
        # A time with no UTC form.
        (DEVICE, event_json(occurred_at='"0001-01-01T00:00:00+05:00"'), Reason.TIME_OUT_OF_RANGE),
        (ZIGBEE, b'{"last_seen": "0001-01-01T00:00:00+05:00"}', Reason.TIME_OUT_OF_RANGE),
    ],
)
def test_values_the_record_cannot_store_are_refused_with_their_reason(
    topic: str, raw: bytes, expected: Reason
) -> None:
    assert reason(topic, raw) is expected


def test_the_limits_themselves_are_accepted() -> None:
    [rec] = decode(DEVICE, event_json(seq=str(2**63 - 1), detail='{"d": [[[1.5e300]]]}'))
    assert isinstance(rec.record, EventRecord) and rec.record.seq == 2**63 - 1
    [pres] = decode(PRESENCE, presence_json(x="-3.5", y="12", floor="2"))
    assert isinstance(pres.record, PresenceRecord) and pres.record.x == -3.5


def test_every_refusal_is_a_dead_letter_reason() -> None:
    assert {r.value for r in Refusal} <= {r.value for r in Reason}


def test_detail_of_a_refusal_is_itself_storable() -> None:
    # A topic is echoed in the detail; it must not carry a NUL into the dead-letter stream.
    with pytest.raises(DecodeError) as info:
        decode("telecare/test-court/devices/x\x00y/evnts", b"{}")
    assert "\x00" not in info.value.detail


def test_models_refuse_the_same_values_on_the_python_path() -> None:
    # The carer page and the API build records in Python, not from JSON.
    with pytest.raises(ValueError, match="nul_character"):
        ActionRecord.model_validate(
            {**json.loads(action_json()), "note": "a\x00", "carer_id": "cw-01"}
        )
    with pytest.raises(ValueError):
        PresenceRecord.model_validate(
            {**json.loads(presence_json()), "x": float("nan"), "carer_id": "cw-01"}
        )


def test_escaping_makes_any_text_storable_and_keeps_it_visible() -> None:
    assert escape_text("a\x00b\ud800c") == "a\\x00b\\ud800c"
    assert escape_text("plain") == "plain"
    assert escape_json({"k\x00": [float("inf"), "\udfff"]}) == {"k\\x00": [None, "\\udfff"]}


# ---- typed records --------------------------------------------------------------------------


def test_records_round_trip_through_the_one_adapter(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    recs = [
        *decode(DEVICE, event_json(seq="7", detail='{"v": "x"}')),
        *decode(CALLOUT, callout_json(notes='"key safe 1234"')),
        *decode(ACTION, action_json(note='"lifted"')),
        *decode(PRESENCE, presence_json(x="1.5", y="2")),
    ]
    control = Decoded(
        RecordType.CONTROL,
        "test-court",
        "control/1",
        DeviceModeControl(device_id="pendant-001", until=None, at=NOW),
    )
    j.commit([Incoming("t", NOW, records=[*recs, control])])
    back = j.read_records(0, 10)
    assert [r.record for r in back] == [*(r.record for r in recs), control.record]
    assert all(r.error is None for r in back)
    # The engine's inputs come from the typed fields.
    first = to_input(back[0])
    assert isinstance(first, EventIn) and first.device_id == "pendant-001"


def test_an_unreadable_journal_row_is_reported_not_raised(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    [rec] = decode(DEVICE, event_json())
    j.commit([Incoming("t", NOW, records=[rec])])
    # An older version accepted a NUL in detail; this one cannot read that row as a record.
    assert j._writer is not None
    j._writer.execute(
        "UPDATE records SET body = json_set(body, '$.detail', json_object('x', char(0)))"
    )
    j.close()  # such a row is from before this process: read from the file, not memory
    j.open()
    [row] = j.read_records(0, 10)
    assert row.record is None and row.error and "nul_character" in row.error
    assert to_input(row) is None


def test_legacy_rows_without_the_tag_still_read(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    [rec] = decode(DEVICE, event_json())
    j.commit([Incoming("t", NOW, records=[rec])])
    assert j._writer is not None
    j._writer.execute("UPDATE records SET body = json_remove(body, '$.record_type')")
    j.close()
    j.open()
    [row] = j.read_records(0, 10)
    assert row.record == rec.record


def test_a_control_record_needs_no_carer() -> None:
    rec = RECORDS.validate_python(
        {
            "record_type": "control",
            "op": "device_mode",
            "device_id": "d-1",
            "until": None,
            "at": NOW,
        }
    )
    assert isinstance(rec, DeviceModeControl)


# ---- de-duplication per (device, event_id) -------------------------------------------------


def test_same_event_id_from_two_devices_is_two_events_in_the_journal(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    event_id = str(uuid.uuid4())
    registry = FakeRegistry(devices={"pendant-001", "pendant-002"})

    def from_device(device: str) -> list[Decoded]:
        raw = event_json(event_id=f'"{event_id}"', device_id=f'"{device}"')
        topic = f"telecare/test-court/devices/{device}/events"
        return decode_message(
            topic, raw, layout=LAYOUT, registry=registry, received_at=NOW, max_bytes=4096
        )

    first, second, again = (
        from_device("pendant-001"),
        from_device("pendant-002"),
        from_device("pendant-001"),
    )
    results = j.commit([Incoming("t", NOW, records=r) for r in (first, second, again)])
    assert [(r.new, r.duplicates) for r in results] == [(1, 0), (1, 0), (0, 1)]


def test_same_event_id_from_two_devices_opens_two_alarms_in_the_engine() -> None:
    d = Driver(NIGHT)
    d.login("cw-01")
    event_id = str(uuid.uuid4())
    a, b = device_in("A-001"), device_in("B-031")
    d.event(a, event_id=event_id)
    d.event(b, event_id=event_id)
    d.event(a, event_id=event_id)  # a genuine redelivery is still a duplicate
    raised = {c.alarm_id for c in d.log if isinstance(c, RecordTransition) and c.state == "raised"}
    assert len(raised) == 2
    assert {a_.device_id for a_ in d.state.alarms.values()} == {a, b}
    assert HZC.id in {a_.scheme for a_ in d.state.alarms.values()}


def test_an_older_journal_is_re_keyed_so_redeliveries_stay_duplicates(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    [rec] = decode(DEVICE, event_json())
    assert isinstance(rec.record, EventRecord)
    j.commit([Incoming("t", NOW, records=[rec])])
    # What an older version wrote: the event id alone as the key.
    assert j._writer is not None
    j._writer.execute("UPDATE records SET key = ?", (str(rec.record.event_id),))
    j._writer.execute("DELETE FROM meta WHERE key = 'event_keys'")
    j.close()
    j.open()
    assert [r.key for r in j.read_records(0, 10)] == [rec.key]
    assert [(r.new, r.duplicates) for r in j.commit([Incoming("t", NOW, records=[rec])])] == [
        (0, 1)
    ]


def test_a_row_error_is_told_apart_from_an_outage() -> None:
    row = [psycopg.errors.CheckViolation(), psycopg.errors.UntranslatableCharacter()]
    row += [psycopg.errors.NumericValueOutOfRange(), psycopg.errors.NotNullViolation()]
    row += [UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogate"), storage.UnshippableRow()]
    for exc in row:
        assert storage.row_error(exc), exc
        assert not shipper._outage(exc), exc
    outages = [psycopg.OperationalError("connection lost"), psycopg.errors.AdminShutdown()]
    outages += [psycopg.errors.ConnectionFailure(), ConnectionRefusedError()]
    for exc in outages:
        assert shipper._outage(exc), exc
        assert not storage.row_error(exc), exc
    # Neither: the database answered but refuses something no row caused (a schema problem).
    schema = psycopg.errors.UndefinedTable()
    assert not storage.row_error(schema) and not shipper._outage(schema)
