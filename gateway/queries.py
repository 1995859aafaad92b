"""The API's reads from TimescaleDB, on a small connection pool (the storage layer's read side).

The pool opens lazily (``min_size=0``): a gateway starts and serves alarms while the database is
away, and a read then fails fast with ``DatabaseUnavailable`` (HTTP 503) instead of hanging.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api_models import DeadLetterRow, Decision, DeviceEventRow, TimelineRow
from gateway.api.ports import DatabaseUnavailable, NotAnId

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
