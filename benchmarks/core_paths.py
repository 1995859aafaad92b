"""Benchmark the two hot paths inside the gateway, as ratios within one run.

1. Journal group commit: N events committed one per transaction (one fsync each) versus in
   batches, as the ingest loop does when messages queue up behind an fsync.
2. The engine core: events per second through ``Core.step`` for a heartbeat-heavy stream over
   the Hazelhurst Court scheme, with alarms being raised, offered and accepted in between.

Prints figures; asserts nothing (the machine is shared and noisy). Run:
    .venv/bin/python benchmarks/core_paths.py [--events 5000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devices.decoders import Decoded
from devices.events import EventKind
from devices.records import EventRecord
from devices.registry import DeviceType
from devices.scheme import load_scheme
from gateway.engine.core import Core
from gateway.engine.model import (
    ActionIn,
    ActionKind,
    EventIn,
    Outcome,
    Position,
    PresenceIn,
    SendOffer,
)
from gateway.journal import Incoming, Journal

SCHEME = Path(__file__).resolve().parents[1] / "examples" / "hazelhurst-court.yaml"


def incoming(i: int) -> Incoming:
    now = datetime.now(UTC)
    event = EventRecord(
        event_id=uuid.UUID(int=i + 1), device_id="d", kind=EventKind.HEARTBEAT, occurred_at=now
    )
    return Incoming("t/s/devices/d/events", now, [Decoded.of("s", event)])


def journal_rate(n: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        j = Journal(Path(tmp) / "j.db")
        j.open()
        items = [incoming(i) for i in range(n)]
        started = time.perf_counter()
        for k in range(0, n, batch):
            j.commit(items[k : k + batch])
        elapsed = time.perf_counter() - started
        j.close()
    return n / elapsed


def engine_rate(n: int) -> tuple[float, int]:
    scheme = load_scheme(SCHEME)
    core = Core({scheme.id: scheme})
    now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    state = core.initial_state(now)
    for cid, flat in (("cw-01", "A-012"), ("cw-02", "B-050")):
        state, _ = core.step(state, PresenceIn(scheme.id, cid, "login", Position(flat=flat)), now)
    rng = random.Random(1)
    devices = [d for d in scheme.devices if d.zigbee_friendly_name is None]
    pendants = [d for d in devices if d.type is DeviceType.PENDANT]
    offers = 0
    started = time.perf_counter()
    for i in range(n):
        now += timedelta(milliseconds=200)
        if i % 500 == 0:
            d, kind = rng.choice(pendants), "pendant_press"
        else:
            d, kind = rng.choice(devices), "heartbeat"
        ev = EventIn(scheme.id, str(uuid.UUID(int=i + 1)), d.device_id, kind, now, now)
        state, cmds = core.step(state, ev, now)
        for c in cmds:
            if isinstance(c, SendOffer):
                offers += 1
                act = ActionIn(scheme.id, c.carer_id, ActionKind.ACCEPT, c.alarm_id, c.offer_id)
                state, _ = core.step(state, act, now)
                for step in (ActionKind.ARRIVED, ActionKind.RESOLVED):
                    state, _ = core.step(
                        state,
                        ActionIn(scheme.id, c.carer_id, step, c.alarm_id, None, Outcome.ASSISTED),
                        now,
                    )
        if i % 100 == 0:
            for cid in ("cw-01", "cw-02"):
                state, _ = core.step(state, PresenceIn(scheme.id, cid, "heartbeat"), now)
    return n / (time.perf_counter() - started), offers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    n = args.events
    one = journal_rate(min(n, 2000), 1)
    batched = journal_rate(n, 200)
    print(f"journal, one event per commit : {one:10.0f} events/s")
    print(f"journal, 200 events per commit: {batched:10.0f} events/s  ({batched / one:.0f}x)")
    rate, offers = engine_rate(n)
    print(f"engine core (Hazelhurst Court): {rate:10.0f} events/s  ({offers} alarms routed)")


if __name__ == "__main__":
    main()
