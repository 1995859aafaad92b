"""The shipper against real TimescaleDB: a row the database refuses is found by splitting the
batch and quarantined with its error; every other row ships, on every stream."""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from devices.decoders import Decoded
from devices.events import EventKind
from devices.records import EventRecord
from gateway import storage
from gateway.config import DbSettings, Settings
from gateway.journal import DeadLetter, EngineCommit, EngineStore, Incoming, Journal
from gateway.metrics import Metrics
from gateway.shipper import Shipper

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def event(i: int, location: str = "bedroom") -> Decoded:
    return Decoded.of(
        "hzc",
        EventRecord(
            event_id=uuid.uuid4(),
            device_id=f"pendant-{i:03d}",
            kind=EventKind.PENDANT_PRESS,
            occurred_at=T0,
            seq=i,
            location=location,
        ),
    )


def rows(dsn: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


async def ship_until_caught_up(shipper: Shipper, journal: Journal) -> None:
    task = asyncio.create_task(shipper.run())
    try:
        for _ in range(600):
            await asyncio.sleep(0.05)
            if shipper.db_up and all(
                shipper.shipped.get(s, 0) >= journal.head(s)
                for s in ("records", "dead_letters", "engine_log")
            ):
                return
        pytest.fail(f"shipper did not catch up: {shipper.status()}")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_a_refused_row_is_quarantined_and_everything_else_ships(
    database: str, tmp_path: Path
) -> None:
    with psycopg.connect(database, autocommit=True) as conn:

        async def migrate() -> None:
            async with await psycopg.AsyncConnection.connect(database, autocommit=True) as a:
                await storage.migrate(a)

        asyncio.run(migrate())
        # A rule the protocol does not know: the database alone refuses this one row.
        conn.execute(
            "ALTER TABLE device_events ADD CONSTRAINT no_attic CHECK (location <> 'attic')"
        )

    journal = Journal(tmp_path / "j.db", dedupe_retention=timedelta(hours=1))
    journal.open()
    batch = [event(i, "attic" if i == 37 else "bedroom") for i in range(100)]
    journal.commit([Incoming("t/hzc/devices/x/events", T0, records=[r]) for r in batch])
    # An older version's row this version cannot read (a NUL in detail) is quarantined too.
    journal.commit([Incoming("t", T0, records=[event(100)])])
    assert journal._writer is not None
    journal._writer.execute(
        "UPDATE records SET body = json_set(body, '$.detail', json_object('x', char(0)))"
        " WHERE seq = 101"
    )
    journal.close()  # that row is from before this process: read from the file, not memory
    journal.open()
    journal.commit([Incoming("t", T0, records=[event(101)])])
    # Hostile text in a dead letter and in the engine's own log is escaped, not refused.
    journal.commit(
        [
            Incoming(
                "t/hzc/devices/a\x00b/events",
                T0,
                dead_letter=DeadLetter("wrong_topic", "detail \x00 \ud800", b"\x00", 1, "hzc"),
            )
        ]
    )
    note = {"scheme": "hzc", "kind": "control_room", "code": "c", "message": "m\x00"}
    EngineStore(journal).commit(
        EngineCommit(0, {}, [], [], [("notifications", T0.isoformat(), json.dumps(note))]), T0
    )

    settings = Settings(gateway_id="gw-q", db=DbSettings(dsn=SecretStr(database), ship_batch=1000))
    metrics = Metrics()
    with ThreadPoolExecutor(1) as writer:
        shipper = Shipper(settings, journal, writer, metrics)
        asyncio.run(ship_until_caught_up(shipper, journal))

    shipped = rows(database, "SELECT seq FROM device_events ORDER BY seq")
    assert [r[0] for r in shipped] == [i for i in range(102) if i not in (37, 100)]
    quarantined = rows(
        database,
        "SELECT stream, journal_seq, row_kind, sqlstate, error, row_text FROM ship_quarantine"
        " ORDER BY journal_seq",
    )
    assert [(q[0], q[1], q[2]) for q in quarantined] == [
        ("records", 38, "event"),
        ("records", 101, "event"),
    ]
    assert quarantined[0][3] == "23514" and "no_attic" in quarantined[0][4]
    assert '"attic"' in quarantined[0][5]
    assert "nul_character" in quarantined[1][4] and "\\u0000" in quarantined[1][5]
    [dl] = rows(database, "SELECT topic, detail FROM dead_letters")
    assert dl == ("t/hzc/devices/a\\x00b/events", "detail \\x00 \\ud800")
    [msg] = rows(database, "SELECT message FROM notifications")
    assert msg == ("m\\x00",)

    status = shipper.status()
    assert status.streams["records"].quarantined == 2
    assert status.streams["records"].lag_rows == 0
    assert "quarantined" in (status.streams["records"].last_error or "")
    assert status.streams["dead_letters"].quarantined == 0
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in metrics.registry.collect()
        for s in f.samples
    }
    key = ("telecare_shipper_quarantined_rows_total", (("stream", "records"),))
    assert samples[key] == 2
    # The count survives a restart: it is read back from the database.
    with ThreadPoolExecutor(1) as writer:
        again = Shipper(settings, journal, writer, Metrics())
        asyncio.run(ship_until_caught_up(again, journal))
    assert again.status().streams["records"].quarantined == 2
    assert again.db_up
