"""TimescaleDB/PostgreSQL access: schema migrations and the batched COPY of journal rows."""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

import psycopg

from gateway.journal import JournalDeadLetter, JournalRecord

log = logging.getLogger(__name__)

MIGRATIONS = ("001_init.sql",)


async def migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    """Apply the schema. Idempotent; serialised by an advisory lock across gateways."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('telecare-migrate'))")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT name FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for name in MIGRATIONS:
            if name in done:
                continue
            sql = resources.files("gateway.sql").joinpath(name).read_text()
            await conn.execute(sql)  # our own file, not user input
            await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (name,))
            log.info("applied migration %s", name)


async def load_watermarks(
    conn: psycopg.AsyncConnection[Any], gateway_id: str, epoch: str
) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT stream, last_seq FROM ship_watermarks WHERE gateway_id = %s AND journal_epoch = %s",
        (gateway_id, epoch),
    )
    return {row[0]: int(row[1]) for row in await cur.fetchall()}


async def _set_watermark(
    conn: psycopg.AsyncConnection[Any], gateway_id: str, epoch: str, stream: str, seq: int
) -> None:
    await conn.execute(
        "INSERT INTO ship_watermarks (gateway_id, journal_epoch, stream, last_seq)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (gateway_id, journal_epoch, stream)"
        " DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = now()",
        (gateway_id, epoch, stream, seq),
    )


_EVENT_COLUMNS = (
    "received_at, occurred_at, event_id, scheme, device_id, kind, seq, battery_pct, rssi,"
    " location, detail, topic, gateway_id, journal_seq"
)
_CALLOUT_COLUMNS = (
    "received_at, requested_at, callout_id, scheme, resident_ref, reason, priority, operator,"
    " notes, gateway_id, journal_seq"
)
_DEAD_COLUMNS = (
    "received_at, topic, scheme, reason, detail, payload, payload_size, gateway_id, journal_seq"
)


async def ship_records(
    conn: psycopg.AsyncConnection[Any],
    rows: list[JournalRecord],
    gateway_id: str,
    epoch: str,
) -> None:
    """COPY a batch of journal records and move the watermark, in one transaction."""
    events = [r for r in rows if r.record_type == "event"]
    callouts = [r for r in rows if r.record_type == "callout"]
    async with conn.transaction():
        if events:
            async with conn.cursor().copy(
                f"COPY device_events ({_EVENT_COLUMNS}) FROM STDIN"
            ) as copy:
                for r in events:
                    b = r.body
                    detail = b.get("detail")
                    await copy.write_row(
                        (
                            r.received_at,
                            b["occurred_at"],
                            b["event_id"],
                            r.scheme,
                            b["device_id"],
                            b["kind"],
                            b.get("seq"),
                            b.get("battery_pct"),
                            b.get("rssi"),
                            b.get("location"),
                            json.dumps(detail) if detail is not None else None,
                            r.topic,
                            gateway_id,
                            r.seq,
                        )
                    )
        if callouts:
            async with conn.cursor().copy(
                f"COPY careline_callouts ({_CALLOUT_COLUMNS}) FROM STDIN"
            ) as copy:
                for r in callouts:
                    b = r.body
                    await copy.write_row(
                        (
                            r.received_at,
                            b["requested_at"],
                            b["callout_id"],
                            r.scheme,
                            b["resident_ref"],
                            b["reason"],
                            b["priority"],
                            b["operator"],
                            b.get("notes", ""),
                            gateway_id,
                            r.seq,
                        )
                    )
        await _set_watermark(conn, gateway_id, epoch, "records", rows[-1].seq)


async def ship_dead_letters(
    conn: psycopg.AsyncConnection[Any],
    rows: list[JournalDeadLetter],
    gateway_id: str,
    epoch: str,
) -> None:
    async with conn.transaction():
        async with conn.cursor().copy(f"COPY dead_letters ({_DEAD_COLUMNS}) FROM STDIN") as copy:
            for d in rows:
                await copy.write_row(
                    (
                        d.received_at,
                        d.topic,
                        d.scheme,
                        d.reason,
                        d.detail,
                        d.payload,
                        d.payload_size,
                        gateway_id,
                        d.seq,
                    )
                )
        await _set_watermark(conn, gateway_id, epoch, "dead_letters", rows[-1].seq)
