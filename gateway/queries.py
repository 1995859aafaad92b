"""The API's reads from TimescaleDB, on a small connection pool (the storage layer's read side).

The pool opens lazily (``min_size=0``): a gateway starts and serves alarms while the database is
away, and a read then fails fast with ``DatabaseUnavailable`` (HTTP 503) instead of hanging.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api_models import Alert, AuditEntry, DeadLetterRow, Decision, DeviceEventRow, TimelineRow
from gateway.api.ports import DatabaseUnavailable, NotAnId
from gateway.kpi import AlarmTimes

log = logging.getLogger(__name__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Pool:
    """One ``AsyncConnectionPool`` for the API's reads (and the audit trail's writes)."""

    def __init__(self, dsn: str, max_size: int = 4, timeout_s: float = 3.0) -> None:
        self.timeout_s = timeout_s
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]] = (
            AsyncConnectionPool(
                dsn,
                min_size=0,
                max_size=max_size,
                open=False,
                timeout=timeout_s,
                check=AsyncConnectionPool.check_connection,
                kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 3},
                name="api",
            )
        )

    def connection(
        self,
    ) -> contextlib.AbstractAsyncContextManager[psycopg.AsyncConnection[dict[str, Any]]]:
        return self._pool.connection(timeout=self.timeout_s)

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    async def fetch(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Rows as dicts. ``DatabaseUnavailable`` when the database cannot be reached."""
        try:
            async with self._pool.connection(timeout=self.timeout_s) as conn:
                cur = await conn.execute(sql, args)
                return await cur.fetchall()
        except psycopg.errors.InvalidTextRepresentation as exc:
            raise NotAnId(_first_line(exc)) from exc
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable(_first_line(exc)) from exc

    async def execute(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            async with self._pool.connection(timeout=self.timeout_s) as conn:
                await conn.execute(sql, args)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable(_first_line(exc)) from exc


class Queries:
    """Implements ``gateway.api.ports.Queries``: this gateway's rows only."""

    def __init__(self, pool: Pool, gateway_id: str) -> None:
        self.pool = pool
        self.gateway_id = gateway_id

    async def events(self, scheme: str | None, limit: int) -> list[DeviceEventRow]:
        rows = await self.pool.fetch(
            "SELECT received_at, occurred_at, event_id, scheme, device_id, kind, location,"
            " battery_pct FROM device_events WHERE gateway_id = %s"
            " AND (%s::text IS NULL OR scheme = %s) ORDER BY received_at DESC LIMIT %s",
            (self.gateway_id, scheme, scheme, limit),
        )
        return [DeviceEventRow.model_validate(r) for r in rows]

    async def dead_letters(self, limit: int) -> list[DeadLetterRow]:
        rows = await self.pool.fetch(
            "SELECT received_at, topic, scheme, reason, detail, payload_size FROM dead_letters"
            " WHERE gateway_id = %s ORDER BY received_at DESC LIMIT %s",
            (self.gateway_id, limit),
        )
        return [DeadLetterRow.model_validate(r) for r in rows]

    async def audit(self, limit: int, username: str | None, action: str | None) -> list[AuditEntry]:
        return await read_audit(self.pool, limit, username, action)

    async def alerts(self, since: datetime, scheme: str | None, limit: int) -> list[Alert]:
        """Control-room alerts recorded since ``since`` (oldest first), in the stream's shape:
        what a control room missed while it was away."""
        rows = await self.pool.fetch(
            "SELECT at, scheme, kind, code, priority, alarm_id::text AS alarm_id, target, message"
            " FROM notifications WHERE at >= %s AND (%s::text IS NULL OR scheme = %s)"
            " AND kind IN ('control_room', 'on_call', 'edt', 'follow_up', 'technical')"
            " ORDER BY at, journal_seq LIMIT %s",
            (since, scheme, scheme, limit),
        )
        return [alert_of(r) for r in rows]

    async def alarm_times(self, scheme: str, since: datetime) -> list[AlarmTimes]:
        """Each alarm raised since ``since``: its most urgent priority and first accept,
        arrival and close (engine time). Test calls never raised are not alarms."""
        rows = await self.pool.fetch(
            "SELECT alarm_id::text AS alarm_id, min(priority) AS priority,"
            " min(at) FILTER (WHERE step = 'raised') AS raised,"
            " min(at) FILTER (WHERE step IN ('accepted', 'accepted_one')) AS accepted,"
            " min(at) FILTER (WHERE step = 'arrived') AS arrived,"
            " min(at) FILTER (WHERE step IN ('resolved', 'cancelled')) AS closed"
            " FROM alarm_events WHERE scheme = %s AND at >= %s"
            " GROUP BY alarm_id HAVING min(at) FILTER (WHERE step = 'raised') IS NOT NULL",
            (scheme, since),
        )
        return [AlarmTimes(**r) for r in rows]

    async def alarm_history(self, alarm_id: str) -> tuple[list[TimelineRow], list[Decision]]:
        timeline = await self.pool.fetch(
            "SELECT at, step, priority, carer_id, occurred_at, received_at, detail"
            " FROM alarm_events WHERE alarm_id = %s::uuid ORDER BY at, journal_seq",
            (alarm_id,),
        )
        decisions = await self.pool.fetch(
            "SELECT at, record FROM alarm_decisions WHERE alarm_id = %s::uuid"
            " ORDER BY at, journal_seq",
            (alarm_id,),
        )
        return (
            [TimelineRow.model_validate(r) for r in timeline],
            [Decision.model_validate(r) for r in decisions],
        )


_AUDIT_COLUMNS = "entry_id, at, username, role, action, target, outcome, address, detail, source"


async def write_audit(pool: Pool, entries: list[dict[str, Any]], role: str) -> None:
    """Insert audit entries as ``role`` (INSERT-only), in one transaction."""
    rows = [
        (
            e["entry_id"],
            e["at"],
            e.get("username"),
            e.get("role"),
            e["action"],
            e.get("target"),
            e["outcome"],
            e.get("address"),
            Jsonb(e.get("detail") or {}),
            e.get("source") or "unknown",
        )
        for e in entries
    ]
    async with pool.connection() as conn, conn.transaction():
        # The gateway's own login role owns the table; writing as the audit role means a bug
        # or an injection here can add entries but never change or remove one.
        await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        async with conn.cursor() as cur:
            await cur.executemany(
                f"INSERT INTO audit_log ({_AUDIT_COLUMNS}) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (entry_id) DO NOTHING",
                rows,
            )


async def read_audit(
    pool: Pool, limit: int, username: str | None, action: str | None
) -> list[AuditEntry]:
    rows = await pool.fetch(
        "SELECT at, username, role, action, target, outcome, address, detail FROM audit_log"
        " WHERE (%s::text IS NULL OR username = %s) AND (%s::text IS NULL OR action = %s)"
        " ORDER BY at DESC LIMIT %s",
        (username, username, action, action, limit),
    )
    return [AuditEntry.model_validate(r) for r in rows]


def alert_of(row: dict[str, Any]) -> Alert:
    """A recorded notification as the alert the stream sent for it (gateway/engine/shell.py)."""
    kind, code = row["kind"], row["code"]
    common = {
        "scheme": row["scheme"],
        "at": row["at"],
        "message": row["message"],
        "alarm_id": row["alarm_id"],
    }
    match kind:
        case "control_room":
            return Alert(type="alert", priority=row["priority"], code=code, **common)
        case "on_call":
            return Alert(type="on_call", carer_id=row["target"], **common)
        case "follow_up":
            return Alert(type="follow_up", kind=code, **common)
        case "technical":
            cleared = code.endswith("_cleared")
            return Alert(
                type="technical",
                code=code.removesuffix("_cleared"),
                device_id=row["target"],
                cleared=cleared,
                **common,
            )
    return Alert(type=kind, **common)
