"""The ingest window's pause/resume rule, with a fake client (the real one is exercised by
``tests/faults/test_backlog_window.py`` against Mosquitto)."""

from __future__ import annotations

from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties

from gateway.flow import InFlight, share_property_tables
from gateway.metrics import Metrics


class FakeClient:
    def __init__(self) -> None:
        self.paused = False
        self.pauses = 0
        self.resumes = 0

    def pause_reading(self) -> None:
        self.paused, self.pauses = True, self.pauses + 1

    def resume_reading(self) -> None:
        self.paused, self.resumes = False, self.resumes + 1


def _window(limit: int) -> tuple[InFlight, FakeClient]:
    w = InFlight(Metrics(), limit)
    client = FakeClient()
    w.client = client  # type: ignore[assignment]
    return w, client


def test_reading_pauses_at_the_limit_and_resumes_at_half() -> None:
    w, client = _window(10)
    w.armed = True
    for _ in range(9):
        w.received()
    assert not client.paused
    w.received()
    assert client.paused and w.peak == 10
    for _ in range(4):
        w.done()
    assert client.paused  # 6 still unacknowledged
    w.done()
    assert not client.paused and client.resumes == 1


def test_no_pause_before_the_session_is_subscribed() -> None:
    w, client = _window(3)
    for _ in range(5):  # a conforming broker would not, but the count must stay right
        w.received()
    assert not client.paused
    w.arm()
    assert client.paused
    metrics: Any = w.metrics
    assert metrics.ingest_in_flight_peak._value.get() == 5


def test_shared_property_tables_keep_paho_properties_working() -> None:
    share_property_tables()
    share_property_tables()  # idempotent
    a = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    a.ReceiveMaximum = 50
    a.SessionExpiryInterval = 3600
    b = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    assert a.names is b.names and a.properties is b.properties
    assert not hasattr(b, "ReceiveMaximum")
    # Round trip through the wire form, as paho packs and unpacks a packet's properties.
    c = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    c.unpack(a.pack())  # type: ignore[no-untyped-call]
    assert c.ReceiveMaximum == 50 and c.SessionExpiryInterval == 3600
    with pytest.raises(MQTTException):
        b.ReceiveMaximum = 50  # not a PUBLISH property: still refused
