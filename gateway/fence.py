"""Fences: how ingest learns that everything the broker held for it has arrived.

Ingest publishes a small message, stamped with engine time, to a topic that only the gateway
publishes to and subscribes to (``TopicLayout.fence``). The broker keeps one queue per session
and delivers it in order, so when the fence comes back, every message that reached the broker
before it was sent has been read; once the journal commit of everything read before it is done
and the engine has applied the journal up to that point, supervision may judge silence up to
the fence's time (``gateway.engine.horizon``).

Only fences this process issued count: the id is random, so a fence left in the broker's queue
by an earlier run, or published by anyone else, is ignored (acknowledged and dropped). A fence
from an earlier connection of this process that comes back after a reconnect is still true and
still counts.
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime

KEEP_ISSUED = 64  # fences awaited at once (one is normal; older ones may still come back)
KEEP_PASSED = 16  # committed fences the engine may still be catching up to


@dataclass(frozen=True, slots=True)
class Passed:
    """A fence that came back: everything before it is in the journal up to ``journal_seq``."""

    sent_at: datetime  # engine time when it was published
    journal_seq: int  # the records stream's head when everything before it was committed


class Fences:
    """Fences issued and fences passed. Used on the event loop only."""

    def __init__(self) -> None:
        self._issued: OrderedDict[str, datetime] = OrderedDict()
        self._passed: deque[Passed] = deque(maxlen=KEEP_PASSED)

    def issue(self, now: datetime) -> bytes:
        """A new fence's payload, remembered as sent at ``now``."""
        fence_id = secrets.token_hex(8)
        self._issued[fence_id] = now
        while len(self._issued) > KEEP_ISSUED:
            self._issued.popitem(last=False)
        return json.dumps({"v": 1, "fence_id": fence_id, "sent_at": now.isoformat()}).encode()

    def returned(self, payload: bytes) -> datetime | None:
        """The send time of one of our fences, or None for anything else (never raises)."""
        try:
            body = json.loads(payload)
            fence_id = body["fence_id"] if isinstance(body, dict) else None
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(fence_id, str):
            return None
        return self._issued.pop(fence_id, None)

    def passed(self, sent_at: datetime, journal_seq: int) -> None:
        self._passed.append(Passed(sent_at, journal_seq))

    def applied(self, watermark: int) -> datetime | None:
        """The newest fence whose journal position the engine has applied (``watermark``)."""
        best: datetime | None = None
        for p in self._passed:
            if p.journal_seq <= watermark and (best is None or p.sent_at > best):
                best = p.sent_at
        return best
