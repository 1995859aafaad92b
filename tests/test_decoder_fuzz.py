"""Every decoder over hostile bytes and JSON: only DecodeError may come out, and anything
accepted can be stored. A modest count here; ``tests/faults`` runs 100,000 per decoder."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import TOPICS, check_decoder, mutations, payloads


@pytest.mark.parametrize("decoder", sorted(TOPICS))
def test_decoder_raises_only_decode_error(decoder: str) -> None:
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payloads(decoder))
    def run(payload: bytes) -> None:
        check_decoder(decoder, payload)
        for variant in mutations(payload, 10):
            check_decoder(decoder, variant)

    run()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.binary(max_size=64))
def test_any_topic_raises_only_decode_error(topic: str, payload: bytes) -> None:
    check_decoder("canonical", payload, topic)
