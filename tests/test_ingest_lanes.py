"""Alarms first: the urgent lane between the socket and the journal (``gateway.flow``,
``gateway.ingest``), with a real journal on disk."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.config import Settings
from gateway.flow import two_lanes
from gateway.ingest import ALARM_GRACE_S, FenceMark, Ingest, Pending, urgent
from gateway.journal import Journal
from gateway.metrics import Metrics
from tests.fakes import FakeRegistry
from tests.test_records import ACTION, CALLOUT, DEVICE, LAYOUT, NOW, PRESENCE, ZIGBEE, event_json


def test_each_lane_keeps_its_order_and_the_urgent_one_goes_first() -> None:
    async def run() -> list[int]:
        q = two_lanes(lambda x: x % 10 == 0)(0)
        for i in range(1, 25):
            q.put_nowait(i)
        assert q.qsize() == 24 and q.urgent_waiting == 2
        out = [q.get_nowait() for _ in range(24)]
        assert q.empty()
        return out

    assert asyncio.run(run()) == [10, 20, *[i for i in range(1, 25) if i % 10]]


def test_every_input_but_a_heartbeat_is_urgent() -> None:
    """Only heartbeats are overtaken; every other input keeps its order among the others (a
    carer's login published just before a press must be applied before it)."""
    press, beat = event_json(), event_json(kind='"heartbeat"')
    assert urgent(LAYOUT, DEVICE, press)
    assert urgent(LAYOUT, CALLOUT, b'{"callout_id": "ARC-1"}')
    assert urgent(LAYOUT, ACTION, b'{"action": "accept"}')
    assert urgent(LAYOUT, ZIGBEE, b'{"contact": false}')
    assert urgent(LAYOUT, PRESENCE, b'{"what": "login"}')
    assert urgent(LAYOUT, "telecare/test-court/carers/cw-01/visits", b'{"action": "check_in"}')
    assert not urgent(LAYOUT, DEVICE, beat)
    assert not urgent(LAYOUT, PRESENCE, b'{"what": "heartbeat"}')
    assert not urgent(LAYOUT, "telecare/test-court/devices/pendant-001/receipts", press)
    assert not urgent(LAYOUT, LAYOUT.fence("gw"), b"{}")  # a fence never overtakes
    assert not urgent(LAYOUT, "elsewhere/test-court/devices/pendant-001/events", press)


def test_an_alarm_is_journaled_ahead_of_queued_heartbeats_in_a_commit_of_its_own(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.open()
    acked: list[str] = []

    async def run(ingest: Ingest) -> None:
        def pending(raw: bytes) -> Pending:
            incoming = ingest.classify(DEVICE, raw, NOW)
            assert incoming.dead_letter is None
            key = incoming.records[0].key
            return Pending(
                incoming, lambda: acked.append(key), 0.0, None, urgent(LAYOUT, DEVICE, raw)
            )

        beats = [pending(event_json(kind='"heartbeat"')) for _ in range(40)]
        press = pending(event_json(event_id=f'"{uuid.uuid4()}"'))
        for p in [*beats[:20], press, *beats[20:]]:
            ingest.queue.put_nowait(p)
        ingest.queue.put_nowait(FenceMark(NOW))
        task = asyncio.create_task(ingest._committer())
        for _ in range(500):
            if len(acked) == 41:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    with ThreadPoolExecutor(1) as writer:
        settings = Settings(mqtt={"topic_root": "telecare", "zigbee_root": "zigbee2mqtt"})
        ingest = Ingest(settings, FakeRegistry(), journal, writer, Metrics())  # type: ignore[arg-type]
        asyncio.run(run(ingest))
    rows = journal.read_records(0, 100)
    kinds = [r.record.kind.value for r in rows]  # type: ignore[union-attr]
    # Read after 20 heartbeats, journaled first, and acknowledged before any of them.
    assert kinds[0] == "pendant_press" and kinds[1:] == ["heartbeat"] * 40
    assert acked[0] == rows[0].key
    assert journal.stats.commits >= 2  # its own commit, then the heartbeats
    assert ingest.fences.applied(10**9) is not None  # the fence passed after all of them


def test_routine_batches_fill_but_an_alarm_arriving_meanwhile_goes_at_once(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.open()
    acked: list[tuple[str, float]] = []

    async def run(ingest: Ingest) -> float:
        more = asyncio.Event()

        def pending(raw: bytes) -> Pending:
            incoming = ingest.classify(DEVICE, raw, NOW)
            kind = incoming.records[0].record.kind.value  # type: ignore[union-attr]

            def ack() -> None:
                acked.append((kind, time.monotonic()))
                more.set()

            return Pending(incoming, ack, 0.0, None, urgent(LAYOUT, DEVICE, raw))

        async def until(n: int) -> None:
            while len(acked) < n:
                more.clear()
                await more.wait()

        beat = event_json(kind='"heartbeat"')
        task = asyncio.create_task(ingest._committer())
        ingest.queue.put_nowait(pending(beat))  # commits at once: no routine commit yet
        await until(1)
        for _ in range(3):  # these wait for the window (2 s here) to fill a batch
            ingest.queue.put_nowait(pending(event_json(kind='"heartbeat"')))
        await asyncio.sleep(0.05)
        pressed = time.monotonic()
        ingest.queue.put_nowait(pending(event_json()))
        await until(5)
        task.cancel()
        return pressed

    with ThreadPoolExecutor(1) as writer:
        settings = Settings(
            mqtt={"topic_root": "telecare", "zigbee_root": "zigbee2mqtt"},
            journal={"path": tmp_path / "unused.db", "max_delay_ms": 2000},
        )
        ingest = Ingest(settings, FakeRegistry(), journal, writer, Metrics())  # type: ignore[arg-type]
        pressed = asyncio.run(run(ingest))
    kinds = [k for k, _ in acked]
    assert kinds == ["heartbeat", "pendant_press", "heartbeat", "heartbeat", "heartbeat"]
    assert acked[1][1] - pressed < 1.0  # not held for the routine window
    assert acked[2][1] - acked[0][1] >= 1.9  # the heartbeats were


def test_after_an_alarm_the_next_routine_commit_leaves_the_writer_to_the_engine(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.open()
    acked: list[tuple[str, float]] = []

    async def run(ingest: Ingest) -> None:
        done = asyncio.Event()

        def pending(raw: bytes) -> Pending:
            incoming = ingest.classify(DEVICE, raw, NOW)
            kind = incoming.records[0].record.kind.value  # type: ignore[union-attr]

            def ack() -> None:
                acked.append((kind, time.monotonic()))
                if len(acked) == 2:
                    done.set()

            return Pending(incoming, ack, 0.0, None, urgent(LAYOUT, DEVICE, raw))

        ingest.queue.put_nowait(pending(event_json()))
        ingest.queue.put_nowait(pending(event_json(kind='"heartbeat"')))
        task = asyncio.create_task(ingest._committer())
        await done.wait()
        task.cancel()

    with ThreadPoolExecutor(1) as writer:
        settings = Settings(
            mqtt={"topic_root": "telecare", "zigbee_root": "zigbee2mqtt"},
            journal={"path": tmp_path / "unused.db", "max_delay_ms": 0},  # no routine window
        )
        ingest = Ingest(settings, FakeRegistry(), journal, writer, Metrics())  # type: ignore[arg-type]
        asyncio.run(run(ingest))
    assert [k for k, _ in acked] == ["pendant_press", "heartbeat"]
    assert acked[1][1] - acked[0][1] >= ALARM_GRACE_S * 0.9
