"""The gateway's one MQTT client factory and its one reconnect backoff."""

from __future__ import annotations

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.broker_conn import Backoff, mqtt_client
from gateway.config import MqttSettings
from gateway.flow import FlowControlledClient


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
