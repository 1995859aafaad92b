"""Receipts in isolation: which messages earn one, what it says, and the device resend rule."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from devices.decoders import Decoded
from devices.events import EventKind
from devices.receipts import RESEND_CAP_S, DeviceReceipt, resend_delay
from devices.records import EventRecord
from devices.topics import TopicLayout
from gateway.journal import CommitResult, DeadLetter, Incoming
from gateway.receipts import render as render_receipt
from gateway.receipts import target_for

L = TopicLayout("tc", "z2m")
AT = datetime(2026, 11, 22, 2, 14, tzinfo=UTC)


class Beats:
    def heartbeat_s(self, scheme: str, device_id: str) -> int | None:
        return 60 if device_id == "hub-1" else None


def test_device_and_callout_topics_earn_receipts_others_do_not() -> None:
    t = target_for(L, "tc/s1/devices/hub-1/events", b'{"event_id": "e1"}', Beats())
    assert t is not None and t.topic == "tc/s1/devices/hub-1/receipts"
    assert (t.id_field, t.id_value, t.heartbeat_s) == ("event_id", "e1", 60)
    # A misspelt leaf is refused, and the device is told so on its own receipt topic.
    t = target_for(L, "tc/s1/devices/hub-1/evnts", b"{}", Beats())
    assert t is not None and t.topic == "tc/s1/devices/hub-1/receipts" and t.id_value is None
    t = target_for(L, "tc/s1/careline/callouts", b'{"callout_id": "ARC-1"}', Beats())
    assert t is not None and t.topic == "tc/s1/careline/receipts" and t.id_value == "ARC-1"
    for topic in (
        "tc/s1/devices/hub-1/receipts",  # our own
        "tc/s1/carers/cw-01/actions",  # handsets get action results instead
        "z2m/front-door",  # Zigbee2MQTT cannot read a receipt
        "other/s1/devices/hub-1/events",
    ):
        assert target_for(L, topic, b"{}", Beats()) is None, topic


def test_status_follows_the_commit() -> None:
    t = target_for(L, "tc/s1/devices/hub-1/events", b"", Beats())
    assert t is not None
    event_id = uuid.UUID(int=9)
    rec = Decoded.of(
        "s1",
        EventRecord(event_id=event_id, device_id="hub-1", kind=EventKind.HEARTBEAT, occurred_at=AT),
    )
    ok = Incoming("tc/s1/devices/hub-1/events", AT, records=[rec])
    accepted = json.loads(render_receipt(t, ok, CommitResult(1, 0), AT))
    assert accepted == {
        "v": 1,
        "event_id": str(event_id),
        "status": "accepted",
        "reason": None,
        "heartbeat_s": 60,
        "at": AT.isoformat(),
    }
    DeviceReceipt.model_validate(accepted)
    dup = json.loads(render_receipt(t, ok, CommitResult(0, 1), AT))
    assert dup["status"] == "duplicate"
    dl = Incoming(t.topic, AT, dead_letter=DeadLetter("invalid_payload", "bad", b"", 0))
    refused = json.loads(render_receipt(t, dl, CommitResult(0, 0), AT))
    assert (refused["status"], refused["reason"]) == ("refused", "invalid_payload")


@given(st.binary(max_size=300))
def test_any_bytes_give_a_target_and_never_raise(payload: bytes) -> None:
    t = target_for(L, "tc/s1/devices/d/events", payload, Beats())
    assert t is not None
    assert t.id_value is None or 0 < len(t.id_value) <= 128


def test_hostile_payloads_are_read_safely() -> None:
    deep = b'{"event_id": "e-deep", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    t = target_for(L, "tc/s1/devices/d/events", deep, Beats())
    assert t is not None and t.id_value == "e-deep"  # found by the byte scan
    digits = b'{"event_id": "e-big", "seq": ' + b"9" * 6000 + b"}"
    t = target_for(L, "tc/s1/devices/d/events", digits, Beats())
    assert t is not None and t.id_value == "e-big"
    t = target_for(L, "tc/s1/devices/d/events", b'{"event_id": 5}', Beats())
    assert t is not None and t.id_value is None
    uid = str(uuid.uuid4())
    t = target_for(L, "tc/s1/devices/d/events", json.dumps({"event_id": uid}).encode(), Beats())
    assert t is not None and t.id_value == uid


def test_resend_backoff_starts_at_two_seconds_doubles_and_caps_at_thirty() -> None:
    rng = random.Random(7)
    for n in range(40):
        d = resend_delay(n, rng)
        base = min(2.0 * 2**n, RESEND_CAP_S)
        assert 0.8 * base <= d <= min(1.2 * base, RESEND_CAP_S)
    assert resend_delay(0, random.Random(1)) <= 2.4
    assert resend_delay(100, random.Random(1)) <= RESEND_CAP_S


def test_an_id_the_decoder_read_is_used_without_parsing_again() -> None:
    t = target_for(L, "tc/s1/devices/d/events", b"not json at all", Beats(), known_id="e-9")
    assert t is not None and t.id_value == "e-9"
    t = target_for(L, "tc/s1/careline/callouts", b"", Beats(), known_id="ARC-9")
    assert t is not None and t.id_value == "ARC-9" and t.id_field == "callout_id"
