"""Bounded fuzzing at volume: at least 100,000 hostile inputs per decoder (arbitrary bytes,
deep nesting, huge integers, NaN/Infinity, lone surrogates, NUL), fixed seed. Only DecodeError
may come out of a decoder, and whatever it accepts must be storable.

Hypothesis draws 1,250 payloads per decoder (derandomized: the same inputs every run, so a
failure reproduces); each is decoded as drawn and as 80 seeded mutations of it (a hostile value
spliced in at a value position, truncated, a byte flipped, a chunk repeated). That is 101,250
decoder inputs per decoder in a couple of minutes, where 100,000 hypothesis examples each
would take most of an hour on a shared CI machine.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz import TOPICS, check_decoder, mutations, payloads

DRAWN = 1_250
VARIANTS = 80
INPUTS = 100_000


@pytest.mark.parametrize("decoder", sorted(TOPICS))
def test_decoder_raises_only_decode_error_at_volume(decoder: str) -> None:
    count = 0

    @settings(
        max_examples=DRAWN,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(payloads(decoder))
    def run(payload: bytes) -> None:
        nonlocal count
        check_decoder(decoder, payload)
        count += 1
        for variant in mutations(payload, VARIANTS):
            check_decoder(decoder, variant)
            count += 1

    run()
    assert count >= INPUTS, f"only {count} inputs reached the {decoder} decoder"
