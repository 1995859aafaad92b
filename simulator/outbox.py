"""The device side of receipts (docs/protocol.md): keep each event until the gateway says so.

A device (or the Careline) keeps every event it sends and resends the very same payload (same
``event_id``/``callout_id``) with capped exponential backoff, in real time: first after 2 s,
doubling, at most 30 s apart, with jitter, until it holds a receipt of any status. ``refused``
is final. A gateway that sends no receipts only sees harmless duplicates (it deduplicates per
(device_id, event_id)); the resends are counted and reported.

A hub's heartbeat still waiting for a receipt when the hub's next heartbeat goes out is
superseded by it: only the newest says the hub is alive, and resending old ones would only
load the broker.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from devices.receipts import RESEND_CAP_S, RESEND_FIRST_S, resend_delay

FIRST_RESEND_S = RESEND_FIRST_S
__all__ = ["CARELINE", "FIRST_RESEND_S", "RESEND_CAP_S", "Outbox", "Pending", "backoff"]
CARELINE = "careline"  # the key space of call-outs (their receipts have no device id)

Publish = Callable[[str, bytes], Awaitable[None]]
Key = tuple[str, str]  # (device id or CARELINE, event or call-out id)


@dataclass
class Pending:
    topic: str
    payload: bytes
    first_sent: float  # real epoch seconds
    due: float  # next resend
    resends: int = 0
    heartbeat: bool = False


def backoff(resends: int, rng: random.Random) -> float:
    """The delay before resend number ``resends + 1``: the protocol's rule
    (``devices.receipts.resend_delay``: 2 s, doubling, capped at 30 s, +-20% jitter)."""
    return resend_delay(resends, rng)


class Outbox:
    def __init__(self, seed: int, now: Callable[[], float] = time.time) -> None:
        self.pending: dict[Key, Pending] = {}
        self.latest_beat: dict[str, str] = {}
        self.rng = random.Random(f"{seed}/resend")
        self.now = now
        self.receipts: Counter[str] = Counter()  # by status
        self.resends = 0
        self.resent_events = 0  # distinct events resent at least once
        self.superseded = 0
        self.late_receipts = 0  # receipts for events no longer pending (duplicates of one)
        self.refused: list[dict[str, object]] = []
        self.receipt_wait_s: list[float] = []  # first send to receipt, real seconds

    def keep(
        self, device: str, event_id: str, topic: str, payload: bytes, heartbeat: bool = False
    ) -> None:
        now = self.now()
        if heartbeat:
            old = self.latest_beat.get(device)
            if old is not None and self.pending.pop((device, old), None) is not None:
                self.superseded += 1
            self.latest_beat[device] = event_id
        first = now + backoff(0, self.rng)
        self.pending[(device, event_id)] = Pending(topic, payload, now, first, 0, heartbeat)

    def on_receipt(self, device: str, body: dict[str, object]) -> None:
        status = str(body.get("status"))
        ref = body.get("callout_id") if device == CARELINE else body.get("event_id")
        self.receipts[status] += 1
        p = self.pending.pop((device, str(ref)), None) if ref is not None else None
        if p is None:
            self.late_receipts += 1
            return
        self.receipt_wait_s.append(self.now() - p.first_sent)
        if status == "refused":
            self.refused.append({"device": device, "id": ref, "reason": body.get("reason")})

    def due(self) -> list[Pending]:
        """Events whose resend is due now; their next resend is scheduled."""
        now = self.now()
        out = []
        for p in self.pending.values():
            if p.due <= now:
                if p.resends == 0:
                    self.resent_events += 1
                p.resends += 1
                self.resends += 1
                p.due = now + backoff(p.resends, self.rng)
                out.append(p)
        return out

    def unreceipted(self) -> int:
        """Events (not superseded heartbeats) still without a receipt."""
        return sum(1 for p in self.pending.values() if not p.heartbeat)

    def summary(self) -> dict[str, object]:
        waits = sorted(self.receipt_wait_s)
        return {
            "receipts": dict(self.receipts),
            "resends": self.resends,
            "events_resent": self.resent_events,
            "heartbeats_superseded": self.superseded,
            "refused": self.refused[:20],
            "unreceipted_at_end": self.unreceipted(),
            "receipt_wait_max_real_s": round(waits[-1], 3) if waits else None,
            "gateway_sends_receipts": bool(self.receipts),
        }
