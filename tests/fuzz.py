"""Hostile payloads for the decoders, shared by the fast suite and the bounded fault run.

Three families: arbitrary bytes; arbitrary JSON written as text (so it can hold what
``json.dumps`` will not write: NaN, Infinity, 5,000-digit integers, lone surrogates, NUL
escapes), nested up to thousands of levels; and a valid payload of each channel with some
fields replaced by such values, which is what reaches the models and the record.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from hypothesis import strategies as st

from devices.decoders import Decoded, DecodeError, Reason, decode_message
from devices.records import RECORDS
from devices.storable import check_json
from devices.topics import TopicLayout
from tests.fakes import FakeRegistry

LAYOUT = TopicLayout("telecare", "zigbee2mqtt")
REGISTRY = FakeRegistry()
NOW = datetime(2026, 11, 22, 2, 14, tzinfo=UTC)
REASONS = set(Reason)

TOPICS = {
    "canonical": "telecare/test-court/devices/pendant-001/events",
    "callout": "telecare/test-court/careline/callouts",
    "zigbee": "zigbee2mqtt/flat-1-front-door",
    "action": "telecare/test-court/carers/cw-01/actions",
    "presence": "telecare/test-court/carers/cw-01/presence",
    "visit": "telecare/test-court/carers/cw-01/visits",
}

# A valid payload per decoder, as JSON text fragments per field.
BASES: dict[str, dict[str, str]] = {
    "canonical": {
        "event_id": json.dumps(str(uuid.UUID(int=1))),
        "device_id": '"pendant-001"',
        "kind": '"pendant_press"',
        "occurred_at": '"2026-11-22T02:14:05+00:00"',
        "seq": "7",
        "battery_pct": "80",
        "rssi": "-60",
        "location": '"bedroom"',
        "detail": '{"vendor": "x"}',
    },
    "callout": {
        "callout_id": '"ARC-1"',
        "resident_ref": '"TST-0001"',
        "reason": '"fallen"',
        "priority": '"P1"',
        "operator": '"op-1"',
        "requested_at": '"2026-11-22T02:14:00Z"',
        "notes": '"key safe"',
    },
    "zigbee": {
        "contact": "false",
        "battery": "91",
        "battery_low": "false",
        "tamper": "false",
        "linkquality": "120",
        "last_seen": '"2026-11-22T02:14:00+00:00"',
    },
    "action": {
        "action_id": json.dumps(str(uuid.UUID(int=2))),
        "action": '"resolved"',
        "alarm_id": '"a-1"',
        "offer_id": '"o-1"',
        "outcome": '"assisted"',
        "note": '"lifted"',
        "at": '"2026-11-22T02:20:00Z"',
    },
    "presence": {
        "presence_id": json.dumps(str(uuid.UUID(int=3))),
        "what": '"heartbeat"',
        "at": '"2026-11-22T02:20:00Z"',
        "flat": '"A-001"',
        "x": "1.5",
        "y": "2.5",
        "floor": "0",
    },
    "visit": {
        "visit_action_id": json.dumps(str(uuid.UUID(int=4))),
        "action": '"frustrated"',
        "visit_id": '"v-01"',
        "reason": '"no_access"',
        "note": '"key safe empty"',
        "at": '"2026-11-22T02:25:00Z"',
    },
}

HOSTILE = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e400",
    "1" + "0" * 400 + ".5",
    str(2**63),
    str(2**64 - 1),
    str(-(2**63) - 1),
    "9" * 5000,
    "-" + "9" * 4400,
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"x\\udfff"',
    '"\\ud83d\\ude00"',  # a valid pair: must be fine
    '"0001-01-01T00:00:00+05:00"',
    '"9999-12-31T23:59:59-05:00"',
    '"2026-11-22T02:14:05"',
    "0",
    "-1",
    "101",
    "1.5",
    "true",
    "null",
    '""',
    "[]",
    "{}",
]

_scalar = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(json.dumps),
    st.text(max_size=20).map(json.dumps),
    st.text(max_size=20).map(lambda s: json.dumps(s, ensure_ascii=False)),
)
_key = st.one_of(
    st.sampled_from(['"a"', '"\\u0000"', '"\\ud800"', '"record_type"', '"carer_id"']),
    st.text(max_size=8).map(json.dumps),
)
json_text = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.lists(st.tuples(_key, inner), max_size=4).map(
            lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=12,
)


@st.composite
def _nested(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=1, max_value=3000))
    opener = draw(st.sampled_from(["[", '{"a":', '{"detail":']))
    closer = "]" if opener == "[" else "}"
    return opener * depth + draw(_scalar) + closer * depth


@st.composite
def _near_valid(draw: st.DrawFn, decoder: str) -> str:
    fields = dict(BASES[decoder])
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=3, unique=True)):
        if draw(st.booleans()):
            fields[name] = draw(st.one_of(json_text, _nested()))
        else:
            del fields[name]
    if draw(st.integers(0, 4)) == 0:
        fields[draw(st.text(max_size=6))] = draw(json_text)
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}"


def payloads(decoder: str) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, arbitrary JSON (deep, huge, NaN, surrogates, NUL), near-valid payloads."""
    text = st.one_of(json_text, _nested(), _near_valid(decoder), _near_valid(decoder))
    return st.one_of(
        st.binary(max_size=256),
        text.map(lambda t: t.encode("utf-8", "surrogatepass")),
        text.map(lambda t: t.encode("utf-8", "surrogatepass")[:-1]),  # truncated
    )


def decode(decoder: str, payload: bytes, topic: str | None = None) -> list[Decoded]:
    return decode_message(
        topic or TOPICS[decoder],
        payload,
        layout=LAYOUT,
        registry=REGISTRY,
        received_at=NOW,
        max_bytes=1 << 20,
    )


def check_decoder(decoder: str, payload: bytes, topic: str | None = None) -> None:
    """The invariant: a DecodeError with a known reason, or records the database can store."""
    try:
        records = decode(decoder, payload, topic)
    except DecodeError as exc:
        assert exc.reason in REASONS
        assert "\x00" not in exc.detail
        exc.detail.encode("utf-8")  # no lone surrogate either
        return
    for rec in records:
        text = RECORDS.dump_json(rec.record).decode()
        assert "\\u0000" not in text
        check_json(json.loads(text))  # no NUL, surrogate, NaN, 64-bit overflow, deep nesting
        assert RECORDS.validate_json(text) == rec.record


_VALUE_START = re.compile(rb"[:\[,]")
_HOSTILE_BYTES = [h.encode() for h in HOSTILE]


def mutations(payload: bytes, n: int) -> Iterator[bytes]:
    """``n`` cheap variants of one payload (seeded by it, so runs repeat exactly): a hostile
    value spliced in where a JSON value starts, a truncation, a flipped byte, a repeated
    chunk. Hypothesis draws the payloads; this multiplies each into many decoder inputs
    without paying hypothesis's per-example cost for every one."""
    rng = random.Random(payload)
    starts = [m.end() for m in _VALUE_START.finditer(payload)] or [0]
    for _ in range(n):
        pick = rng.random()
        if pick < 0.6:
            at = rng.choice(starts)
            end = at
            while end < len(payload) and payload[end : end + 1] not in (b",", b"}", b"]"):
                end += 1
            yield payload[:at] + rng.choice(_HOSTILE_BYTES) + payload[end:]
        elif pick < 0.75:
            yield payload[: rng.randrange(len(payload) + 1)]
        elif pick < 0.9 and payload:
            i = rng.randrange(len(payload))
            yield payload[:i] + bytes([rng.randrange(256)]) + payload[i + 1 :]
        else:
            i = rng.randrange(len(payload) + 1)
            j = rng.randrange(i, len(payload) + 1)
            yield payload[:j] + payload[i:j] * rng.randrange(1, 50) + payload[j:]
