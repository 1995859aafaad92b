"""The ingest horizon: how far the gateway has got with what the world has sent it.

Supervision must never blame a device for the gateway's own lag. A hub's heartbeat that is
still in the broker's queue, in the ingest queue or in the journal waiting for the engine says
nothing about the hub; it says the gateway is behind. So a device's silence is only counted up
to the *horizon*: the latest time T such that every message that reached the gateway before T
has been applied by the engine. Pure: the shell samples its pipeline once per loop pass and
passes the sample in; tests drive it with a fake clock.

How the horizon moves, for one sample taken when an engine pass begins:
- **Everything drained** (MQTT connected for a while, the ingest queue empty, the loop woke on
  time, and the pass read the journal to its head): the horizon is the time the pass began.
- **Only the journal is behind** (the engine has a backlog, but ingest reads as fast as the
  broker sends: connected, queue not full, loop on time): the horizon is the newest
  ``received_at`` the engine has applied. The journal is in arrival order, so everything that
  arrived before it has been applied.
- **Otherwise** (broker disconnected, ingest queue full so the broker is holding messages for
  us, or the event loop itself stalled): the horizon stays where it was. What is waiting may
  be older than anything applied, so nothing later can be vouched for.

The horizon never goes backwards and never passes the sample's own time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Scheme seconds a loop may wake late and still count as keeping up: a stall this short can
# hide at most this much of a device's silence, against limits of minutes (3 x 60 s for a hub).
LATE_TOLERANCE_S = 10.0
SETTLE_S = 1.0  # real seconds a new MQTT session gets to deliver what the broker held


@dataclass(frozen=True, slots=True)
class IngestSample:
    """The pipeline as one engine pass found it (real seconds for the loop's own timings)."""

    read_at: datetime  # engine time when the pass began (before reading the journal)
    at_head: bool  # the pass read the journal to its head
    applied_to: datetime | None  # newest received_at among the records of this pass
    connected_s: float | None  # how long the MQTT session has been up; None: not connected
    queue_depth: int  # messages read from the broker, not yet journaled
    queue_max: int  # the ingest queue's bound (full: the broker is holding the rest)
    late_s: float  # how late (scheme seconds) the loop woke for this pass


def behind_reason(s: IngestSample) -> str | None:
    """Why this sample cannot vouch for ``read_at``; None when everything is drained."""
    if s.connected_s is None:
        return "not connected to the broker"
    if s.connected_s < SETTLE_S:
        return "reconnected; the broker may still be delivering what it held"
    if s.late_s > LATE_TOLERANCE_S:
        return f"event loop {s.late_s:.1f}s late (CPU starved?)"
    if s.queue_depth >= s.queue_max:
        return f"ingest queue full ({s.queue_depth}); the broker is holding more"
    if s.queue_depth > 0:
        return f"{s.queue_depth} messages waiting to be journaled"
    if not s.at_head:
        return "journal backlog waiting for the engine"
    return None


def advance(horizon: datetime, s: IngestSample) -> datetime:
    """The horizon after this sample (see the module docstring for the rules)."""
    reason = behind_reason(s)
    if reason is None:
        return max(horizon, s.read_at)
    reading_keeps_up = (
        s.connected_s is not None
        and s.connected_s >= SETTLE_S
        and s.late_s <= LATE_TOLERANCE_S
        and s.queue_depth < s.queue_max
    )
    if reading_keeps_up and s.applied_to is not None:
        return max(horizon, min(s.applied_to, s.read_at))
    return horizon
