"""Fences (``gateway.fence``): only our own fences count, and the engine may use one only once
it has applied the journal up to where the fence passed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from gateway.fence import KEEP_ISSUED, Fences

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_a_fence_we_issued_comes_back_with_its_send_time_once() -> None:
    f = Fences()
    payload = f.issue(T0)
    assert f.returned(payload) == T0
    assert f.returned(payload) is None  # a redelivered copy adds nothing


def test_foreign_stale_and_malformed_fences_are_ignored() -> None:
    f = Fences()
    f.issue(T0)
    forged = json.dumps({"v": 1, "fence_id": "0123456789abcdef", "sent_at": T0.isoformat()})
    for payload in (forged.encode(), b"", b"\xff\xfe", b"[]", b'{"fence_id": 7}', b"null"):
        assert f.returned(payload) is None


def test_only_the_newest_issued_fences_are_remembered() -> None:
    f = Fences()
    first = f.issue(T0)
    for i in range(KEEP_ISSUED):
        f.issue(T0 + timedelta(seconds=i + 1))
    assert f.returned(first) is None


def test_the_engine_gets_the_newest_fence_at_or_below_its_watermark() -> None:
    f = Fences()
    assert f.applied(10**9) is None
    f.passed(T0, journal_seq=10)
    f.passed(T0 + timedelta(seconds=5), journal_seq=25)
    assert f.applied(9) is None
    assert f.applied(10) == T0
    assert f.applied(24) == T0
    assert f.applied(25) == T0 + timedelta(seconds=5)
