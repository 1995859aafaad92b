"""The ingest horizon: how far the gateway has got with what the world has sent it.

Supervision must never blame a device for the gateway's own lag. A hub's heartbeat that is
still in the broker's queue, in the ingest queue or in the journal waiting for the engine says
nothing about the hub; it says the gateway is behind. So a device's silence is only counted up
to the *horizon*: the latest time T such that every message that reached the broker before T
has been applied by the engine. Pure: the shell samples its pipeline once per loop pass and
passes the sample in; tests drive it with a fake clock.

How the horizon moves: by *fences*. Ingest publishes a fence (a small message of its own,
stamped with engine time T) to a topic it subscribes to, and the broker queues it for us behind
everything that reached it before T: one session queue, in order. When the fence comes back
through ingest and the records journaled before it have been applied by the engine, every
message that reached the broker before T has been applied, so the horizon may move to T.

No other signal can vouch for the present. An empty ingest queue, a connected session and an
event loop that woke on time all looked like "drained" in a process that had just been frozen
(SIGSTOP, a starved CPU) while the broker held thousands of heartbeats for it and the socket held
more: the first pass after the thaw judged every hub against the clock and blamed each one.
With fences, a frozen, disconnected or backlogged gateway simply stops moving its horizon, and
the diagnostics below say why, for the control room.

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
    fence_at: datetime | None  # newest fence whose journal position this pass has applied
    at_head: bool  # the pass read the journal to its head
    connected_s: float | None  # how long the MQTT session has been up; None: not connected
    queue_depth: int  # messages read from the broker, not yet journaled
    queue_max: int  # the ingest queue's bound (full: the broker is holding the rest)
    late_s: float  # how late (scheme seconds) the loop woke for this pass


def behind_reason(s: IngestSample) -> str | None:
    """Why the horizon may lag ``read_at``, for the control room; None when nothing is known
    to be waiting (the horizon still moves only with fences)."""
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
    if s.fence_at is None:
        return "waiting for the broker to deliver what it holds (fence not back)"
    return None


def advance(horizon: datetime, s: IngestSample) -> datetime:
    """The horizon after this sample: the newest applied fence, never backwards, never past
    the sample's own time."""
    if s.fence_at is None:
        return horizon
    return max(horizon, min(s.fence_at, s.read_at))
