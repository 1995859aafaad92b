"""The gateway's one MQTT client factory and its one reconnect backoff."""

from __future__ import annotations

import socket
import uuid

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.broker_conn import Backoff, mqtt_client, no_delay
from gateway.config import MqttSettings
from gateway.flow import FlowControlledClient
from tests.conftest import Services


@given(
    first=st.floats(0.01, 5),
    factor=st.floats(1, 100),
    jitter=st.floats(0, 0.5),
    draws=st.lists(st.floats(0, 1), min_size=1, max_size=30),
)
def test_backoff_doubles_within_its_jitter_and_never_passes_the_cap(
    first: float, factor: float, jitter: float, draws: list[float]
) -> None:
    cap = first * factor
    it = iter(draws)

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * next(it)

    b = Backoff(first, cap, jitter, uniform)
    base = first
    for _ in draws:
        delay = b.next()
        assert base * (1 - jitter) - 1e-9 <= delay <= base * (1 + jitter) + 1e-9
        assert delay <= cap * (1 + jitter) + 1e-9
        base = min(base * 2, cap)
        assert b.base == pytest.approx(base)
    b.reset()
    assert b.base == first


def test_backoff_refuses_nonsense() -> None:
    for args in ((0, 1), (2, 1), (1, 2, 1.0)):
        with pytest.raises(ValueError):
            Backoff(*args)


async def test_one_factory_builds_both_kinds_of_client() -> None:
    m = MqttSettings(host="127.0.0.1", port=1, username="gw", publisher_username="gw-out")
    plain: aiomqtt.Client = mqtt_client(m, "gw-out", publisher=True)
    assert type(plain) is aiomqtt.Client
    assert plain.identifier == "gw-out"
    assert plain._client._username == b"gw-out"
    ingest = mqtt_client(m, "gw", cls=FlowControlledClient, clean_start=False)
    assert isinstance(ingest, FlowControlledClient)
    assert ingest.identifier == "gw"
    assert ingest._client._username == b"gw"


async def test_no_delay_turns_nagle_off_on_the_connected_socket(services: Services) -> None:
    m = MqttSettings(host=services.mqtt_host, port=services.mqtt_port)
    client = mqtt_client(m, f"nodelay-{uuid.uuid4().hex[:8]}")
    assert not no_delay(client)  # not connected: no socket yet
    async with client:
        sock = client._client.socket()
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # paho's default
        assert no_delay(client)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
