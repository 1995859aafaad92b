"""TimescaleDB/PostgreSQL access: schema migrations and the batched COPY of journal rows."""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

import psycopg

from gateway.journal import EngineLogRow, JournalDeadLetter, JournalRecord

log = logging.getLogger(__name__)

MIGRATIONS = ("001_init.sql", "002_engine.sql", "003_auth_audit.sql")


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
    carer = [r for r in rows if r.record_type in ("action", "presence", "control")]
    async with conn.transaction():
        if carer:
            async with conn.cursor().copy(
                "COPY carer_messages (received_at, scheme, carer_id, kind, body, gateway_id,"
                " journal_seq) FROM STDIN"
            ) as copy:
                for r in carer:
                    await copy.write_row(
                        (
                            r.received_at,
                            r.scheme,
                            r.body.get("carer_id"),
                            r.record_type,
                            json.dumps(r.body),
                            gateway_id,
                            r.seq,
                        )
                    )
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


_ENGINE_COPY = {
    "alarm_events": (
        "COPY alarm_events (at, alarm_id, scheme, step, priority, carer_id, occurred_at,"
        " received_at, detail, gateway_id, journal_seq) FROM STDIN",
        ("alarm_id", "scheme", "step", "priority", "carer_id", "occurred_at", "received_at"),
        "detail",
    ),
    "alarm_decisions": (
        "COPY alarm_decisions (at, alarm_id, scheme, record, gateway_id, journal_seq) FROM STDIN",
        ("alarm_id", "scheme"),
        "record",
    ),
    "notifications": (
        "COPY notifications (at, scheme, kind, code, priority, alarm_id, target, message, body,"
        " gateway_id, journal_seq) FROM STDIN",
        ("scheme", "kind", "code", "priority", "alarm_id", "target", "message"),
        "body",
    ),
}


async def ship_engine_log(
    conn: psycopg.AsyncConnection[Any],
    rows: list[EngineLogRow],
    gateway_id: str,
    epoch: str,
) -> None:
    """COPY engine log rows into their tables and move the watermark, in one transaction."""
    async with conn.transaction():
        for stream, (sql, columns, json_col) in _ENGINE_COPY.items():
            mine = [r for r in rows if r.stream == stream]
            if not mine:
                continue
            async with conn.cursor().copy(sql) as copy:
                for r in mine:
                    b = r.body
                    await copy.write_row(
                        (
                            r.at,
                            *(b.get(c) for c in columns),
                            json.dumps(b.get(json_col) or {}),
                            gateway_id,
                            r.seq,
                        )
                    )
        await _set_watermark(conn, gateway_id, epoch, "engine_log", rows[-1].seq)
