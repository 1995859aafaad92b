"""TimescaleDB/PostgreSQL access: schema migrations and the batched COPY of journal rows."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any, assert_never

import psycopg

from devices.records import (
    RECORDS,
    ActionRecord,
    AlarmControl,
    CalloutRecord,
    CarerStatusControl,
    DeviceModeControl,
    EventRecord,
    FaultControl,
    PresenceRecord,
    PromoteControl,
    VisitControl,
    VisitRecord,
)
from devices.storable import escape_json, escape_text
from gateway.journal import EngineLogRow, JournalDeadLetter, JournalRecord

log = logging.getLogger(__name__)

# Applied in this order on a fresh database (a database that has them all keeps its history).
MIGRATIONS: tuple[str, ...] = (
    "001_init.sql",
    "002_engine.sql",
    "003_auth_audit.sql",  # audit trail (append-only) and its writer role
    "004_quarantine.sql",  # refused rows set aside; control-room records
    "005_reports.sql",  # report indexes, response targets, retention
    "006_visits.sql",  # planned visits' lifecycle (visit_events)
)


async def migrate(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Apply the schema. Idempotent; serialised by an advisory lock across gateways.
    Returns the names of the migrations this call applied (none when already current)."""
    applied: list[str] = []
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
            applied.append(name)
    return applied


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


class UnshippableRow(Exception):
    """A journal row that cannot be turned into database rows (unreadable by this version)."""


# SQLSTATE classes that belong to one row's values: data exception (22: NUL, bad encoding,
# numeric out of range...), integrity constraint (23: NOT NULL, CHECK...), program limit
# (54: too long, too deep). Anything else (connection, shutdown, resources) is not the row's
# fault, and splitting the batch would only quarantine good rows.
_ROW_SQLSTATE_CLASSES = {"22", "23", "54"}


def row_error(exc: BaseException) -> bool:
    """True when ``exc`` was caused by the values of some row in a batch, not by the database
    being unavailable: the batch can be split to find the row."""
    if isinstance(exc, UnshippableRow):
        return True
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        return state is not None and state[:2] in _ROW_SQLSTATE_CLASSES
    # Raised while adapting a value on our side (an unencodable string, a number psycopg
    # cannot send): also one row's fault.
    return isinstance(exc, UnicodeError | ValueError | TypeError | OverflowError)


def _jsonb(value: Any) -> str:
    return json.dumps(escape_json(value), allow_nan=False)


# ---- records: one row builder per table, each reading the typed record ---------------------

_EVENT_COPY = (
    "COPY device_events (received_at, occurred_at, event_id, scheme, device_id, kind, seq,"
    " battery_pct, rssi, location, detail, topic, gateway_id, journal_seq) FROM STDIN"
)


def _event_row(r: JournalRecord, e: EventRecord, gw: str) -> tuple[Any, ...]:
    return (
        r.received_at,
        e.occurred_at,
        e.event_id,
        r.scheme,
        e.device_id,
        e.kind.value,
        e.seq,
        e.battery_pct,
        e.rssi,
        e.location,
        _jsonb(e.detail) if e.detail is not None else None,
        escape_text(r.topic),
        gw,
        r.seq,
    )


_CALLOUT_COPY = (
    "COPY careline_callouts (received_at, requested_at, callout_id, scheme, resident_ref,"
    " reason, priority, operator, notes, gateway_id, journal_seq) FROM STDIN"
)


def _callout_row(r: JournalRecord, c: CalloutRecord, gw: str) -> tuple[Any, ...]:
    return (
        r.received_at,
        c.requested_at,
        c.callout_id,
        r.scheme,
        c.resident_ref,
        c.reason,
        c.priority.value,
        c.operator,
        c.notes,
        gw,
        r.seq,
    )


_CARER_COPY = (
    "COPY carer_messages (received_at, scheme, carer_id, kind, body, gateway_id, journal_seq)"
    " FROM STDIN"
)


def _carer_row(
    r: JournalRecord, m: ActionRecord | PresenceRecord | VisitRecord, gw: str
) -> tuple[Any, ...]:
    body = RECORDS.dump_json(m).decode()
    return (r.received_at, r.scheme, m.carer_id, m.record_type.value, body, gw, r.seq)


_CONTROL_COPY = (
    "COPY control_records (received_at, scheme, op, target, requested_by, body, gateway_id,"
    " journal_seq) FROM STDIN"
)


def _control_row(
    r: JournalRecord,
    c: CarerStatusControl
    | DeviceModeControl
    | PromoteControl
    | AlarmControl
    | FaultControl
    | VisitControl,
    gw: str,
) -> tuple[Any, ...]:
    match c:
        case CarerStatusControl():
            target = c.carer_id
        case DeviceModeControl():
            target = c.device_id
        case PromoteControl() | AlarmControl():
            target = str(c.alarm_id)
        case FaultControl():
            target = c.device_id
        case VisitControl():
            target = c.visit_id
    body = RECORDS.dump_json(c).decode()
    return (r.received_at, r.scheme, c.op.value, target, c.by, body, gw, r.seq)


async def ship_records(
    conn: psycopg.AsyncConnection[Any],
    rows: Sequence[JournalRecord],
    gateway_id: str,
    epoch: str,
) -> None:
    """COPY a batch of journal records and move the watermark, in one transaction."""
    events: list[tuple[Any, ...]] = []
    callouts: list[tuple[Any, ...]] = []
    carer: list[tuple[Any, ...]] = []
    control: list[tuple[Any, ...]] = []
    gw = gateway_id
    for r in rows:
        match r.record:
            case EventRecord() as e:
                events.append(_event_row(r, e, gw))
            case CalloutRecord() as c:
                callouts.append(_callout_row(r, c, gw))
            case ActionRecord() | PresenceRecord() | VisitRecord() as m:
                carer.append(_carer_row(r, m, gw))
            case (
                CarerStatusControl()
                | DeviceModeControl()
                | PromoteControl()
                | AlarmControl()
                | FaultControl()
                | VisitControl()
            ) as ctl:
                control.append(_control_row(r, ctl, gw))
            case None:
                raise UnshippableRow(f"journal row {r.seq} is unreadable: {r.error}")
            case _:  # a new record type must get a table here: mypy says so
                assert_never(r.record)
    async with conn.transaction():
        for sql, table_rows in (
            (_CARER_COPY, carer),
            (_EVENT_COPY, events),
            (_CALLOUT_COPY, callouts),
            (_CONTROL_COPY, control),
        ):
            if table_rows:
                async with conn.cursor().copy(sql) as copy:
                    for row in table_rows:
                        await copy.write_row(row)
        await _set_watermark(conn, gateway_id, epoch, "records", rows[-1].seq)


_DEAD_COPY = (
    "COPY dead_letters (received_at, topic, scheme, reason, detail, payload, payload_size,"
    " gateway_id, journal_seq) FROM STDIN"
)


async def ship_dead_letters(
    conn: psycopg.AsyncConnection[Any],
    rows: Sequence[JournalDeadLetter],
    gateway_id: str,
    epoch: str,
) -> None:
    async with conn.transaction():
        async with conn.cursor().copy(_DEAD_COPY) as copy:
            for d in rows:
                # A dead letter records hostile input: its text is escaped, never refused.
                await copy.write_row(
                    (
                        d.received_at,
                        escape_text(d.topic),
                        escape_text(d.scheme) if d.scheme is not None else None,
                        escape_text(d.reason),
                        escape_text(d.detail),
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
    "visit_events": (
        "COPY visit_events (at, scheme, night, visit_id, run, client_ref, step, carer_id,"
        " alarm_id, agreed_at, detail, gateway_id, journal_seq) FROM STDIN",
        (
            "scheme",
            "night",
            "visit_id",
            "run",
            "client_ref",
            "step",
            "carer_id",
            "alarm_id",
            "agreed_at",
        ),
        "detail",
    ),
}


def _column(value: Any) -> Any:
    return escape_text(value) if isinstance(value, str) else value


async def ship_engine_log(
    conn: psycopg.AsyncConnection[Any],
    rows: Sequence[EngineLogRow],
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
                            *(_column(b.get(c)) for c in columns),
                            _jsonb(b.get(json_col) or {}),
                            gateway_id,
                            r.seq,
                        )
                    )
        await _set_watermark(conn, gateway_id, epoch, "engine_log", rows[-1].seq)


# ---- quarantine ------------------------------------------------------------------------------


async def quarantine(
    conn: psycopg.AsyncConnection[Any],
    *,
    gateway_id: str,
    epoch: str,
    stream: str,
    seq: int,
    row_kind: str | None,
    row_text: str,
    error: BaseException,
) -> None:
    """Set one refused row aside with the database's error and move the watermark past it,
    in one transaction: the row is either shipped, or quarantined, exactly once."""
    sqlstate = error.sqlstate if isinstance(error, psycopg.Error) else None
    message = str(error).strip() or repr(error)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO ship_quarantine (gateway_id, journal_epoch, stream, journal_seq,"
            " row_kind, sqlstate, error, row_text) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (
                gateway_id,
                epoch,
                stream,
                seq,
                escape_text(row_kind) if row_kind else None,
                sqlstate,
                escape_text(message[:2000]),
                escape_text(row_text),
            ),
        )
        await _set_watermark(conn, gateway_id, epoch, stream, seq)


async def quarantine_counts(
    conn: psycopg.AsyncConnection[Any], gateway_id: str, epoch: str
) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT stream, count(*) FROM ship_quarantine WHERE gateway_id = %s"
        " AND journal_epoch = %s GROUP BY stream",
        (gateway_id, epoch),
    )
    return {row[0]: int(row[1]) for row in await cur.fetchall()}
