"""Copy the journal into TimescaleDB, in order, exactly once, whether or not the database is up.

Each batch is one transaction: COPY the rows and move this journal's watermark together, so a
crash between the two cannot double a row. While the database is away the journal simply grows
and the shipper retries with capped backoff; dispatch never waits on it.

One row must never stop the rest. A batch the database refuses because of a row's values (a
data or constraint error, not a lost connection) is split in halves until the refused row is
found; that row goes to ``ship_quarantine`` with the database's error, in the transaction that
moves the watermark past it, and everything else ships. :meth:`Shipper.status` reports, per
stream, the lag, the quarantine count and the last error, so a refused row is never mistaken
for a database outage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from api_models import ShipperStatus, StreamStatus
from gateway import storage
from gateway.aio import raise_if_cancelling
from gateway.clock import Clock
from gateway.config import Settings
from gateway.journal import (
    EngineLogRow,
    EngineStore,
    Journal,
    JournalDeadLetter,
    JournalRecord,
)
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 60.0


class _Row(Protocol):
    @property
    def seq(self) -> int: ...


ShipFn = Callable[[psycopg.AsyncConnection[Any], Sequence[Any], str, str], Awaitable[None]]


@dataclass
class _Stream:
    name: str
    read: Callable[[int, int], Sequence[Any]]
    ship: ShipFn
    quarantined: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    head: int = 0
    oldest: datetime | None = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else repr(exc)


def _outage(exc: BaseException) -> bool:
    """The database is unreachable or going away (as opposed to refusing something)."""
    if isinstance(exc, OSError):
        return True
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        # No SQLSTATE: the client lost the connection. 08 connection, 53 resources,
        # 57 operator intervention (shutdown), 58 system error.
        return state is None or state[:2] in {"08", "53", "57", "58"}
    return False


def _describe(stream: str, row: Any) -> tuple[str | None, str]:
    """A quarantined row's kind and text, from the journal as it holds it."""
    if isinstance(row, JournalRecord):
        return row.record_type, row.raw
    if isinstance(row, JournalDeadLetter):
        text = json.dumps(
            {
                "received_at": row.received_at.isoformat(),
                "topic": row.topic,
                "scheme": row.scheme,
                "reason": row.reason,
                "detail": row.detail,
                "payload_size": row.payload_size,
                "payload_hex": row.payload[:512].hex(),
            }
        )
        return "dead_letter", text
    if isinstance(row, EngineLogRow):
        return row.stream, json.dumps({"at": row.at.isoformat(), **row.body}, default=str)
    return None, repr(row)


class Shipper:
    def __init__(
        self,
        settings: Settings,
        journal: Journal,
        writer: Executor,
        metrics: Metrics,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        # Journal times are the gateway's (scheme) clock: lag and the dedupe window are judged
        # on it, or an accelerated night dated in the past would prune its dedupe rows at once.
        self.clock = clock or Clock()
        self.journal = journal
        self.writer = writer
        self.metrics = metrics
        self.db_up = False
        self.shipped: dict[str, int] = {}
        self.last_error: str | None = None
        self.lag_seconds = 0.0
        self.engine_store = EngineStore(journal)
        self._streams = {
            s.name: s
            for s in (
                _Stream("records", journal.read_records, storage.ship_records),
                _Stream("dead_letters", journal.read_dead_letters, storage.ship_dead_letters),
                _Stream("engine_log", self.engine_store.read_log, storage.ship_engine_log),
            )
        }
        self._current: str | None = None

    def status(self) -> ShipperStatus:
        """Per stream: lag, quarantine count and last error (from memory; cheap)."""
        streams = {}
        for name, st in self._streams.items():
            shipped = self.shipped.get(name, 0)
            streams[name] = StreamStatus(
                head=st.head,
                shipped=shipped,
                lag_rows=max(0, st.head - shipped),
                oldest_unshipped_at=st.oldest,
                quarantined=st.quarantined,
                last_error=st.last_error,
                last_error_at=st.last_error_at,
            )
        return ShipperStatus(
            database_up=self.db_up,
            database_error=None if self.db_up else self.last_error,
            lag_seconds=self.lag_seconds,
            streams=streams,
        )

    async def run(self) -> None:
        db = self.settings.db
        delay = db.retry_min_s
        last_prune = time.monotonic()
        while True:
            raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
            try:
                async with await psycopg.AsyncConnection.connect(
                    db.dsn.get_secret_value(), autocommit=True, connect_timeout=5
                ) as conn:
                    await storage.migrate(conn)
                    gw, epoch = self.settings.gateway_id, self.journal.epoch
                    self.shipped = await storage.load_watermarks(conn, gw, epoch)
                    counts = await storage.quarantine_counts(conn, gw, epoch)
                    for name, st in self._streams.items():
                        st.quarantined = counts.get(name, 0)
                    self._set_db(True)
                    delay = db.retry_min_s
                    while True:
                        raise_if_cancelling()
                        moved = await self.ship_once(conn)
                        if time.monotonic() - last_prune > PRUNE_EVERY_S:
                            last_prune = time.monotonic()
                            await self._prune()
                        if not moved:
                            await asyncio.sleep(db.ship_idle_s)
            except (psycopg.Error, OSError) as exc:
                raise_if_cancelling(exc)  # a cancel mid-query can surface as the query's error
                self.last_error = _first_line(exc)
                if _outage(exc):
                    self._set_db(False)
                    self.metrics.ship_errors.inc()
                    log.warning(
                        "database unavailable (%s); journal keeps events; retry in %.1fs",
                        self.last_error,
                        delay,
                    )
                else:
                    # The database answered, but refused something that is no row's fault
                    # (a schema problem): say which stream is stuck, not "database down".
                    stuck = self._streams.get(self._current or "")
                    if stuck is not None:
                        stuck.last_error = f"stalled: {self.last_error}"
                        stuck.last_error_at = datetime.now(UTC)
                    log.error(
                        "shipping %s stalled (%s); retry in %.1fs",
                        self._current,
                        self.last_error,
                        delay,
                    )
            # Lag keeps growing while the database is away; keep the figures honest.
            await self._update_lag()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, db.retry_max_s)

    def _set_db(self, up: bool) -> None:
        self.db_up = up
        self.metrics.db_up.set(1 if up else 0)

    async def ship_once(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Ship one batch of each stream; returns rows moved (shipped or quarantined)."""
        limit = self.settings.db.ship_batch
        moved = 0
        for name, st in self._streams.items():
            self._current = name
            rows = await asyncio.to_thread(st.read, self.shipped.get(name, 0), limit)
            if rows:
                await self._ship(conn, st, rows)
                moved += len(rows)
        self._current = None
        await self._update_lag()
        return moved

    async def _ship(
        self, conn: psycopg.AsyncConnection[Any], st: _Stream, rows: Sequence[_Row]
    ) -> None:
        """Ship ``rows``; on a row's data error, split until the refused row is found."""
        gw, epoch = self.settings.gateway_id, self.journal.epoch
        try:
            await st.ship(conn, rows, gw, epoch)
        except Exception as exc:
            raise_if_cancelling(exc)  # never quarantine a row for a cancel
            if not storage.row_error(exc):
                raise
            if len(rows) > 1:
                mid = len(rows) // 2
                await self._ship(conn, st, rows[:mid])
                await self._ship(conn, st, rows[mid:])
                return
            await self._quarantine(conn, st, rows[0], exc)
            return
        self.shipped[st.name] = rows[-1].seq
        self.metrics.shipped.labels(st.name).inc(len(rows))
        if st.last_error is not None and st.last_error.startswith("stalled"):
            st.last_error = None  # moving again; a quarantine note stays until the next one

    async def _quarantine(
        self, conn: psycopg.AsyncConnection[Any], st: _Stream, row: _Row, exc: BaseException
    ) -> None:
        kind, text = _describe(st.name, row)
        await storage.quarantine(
            conn,
            gateway_id=self.settings.gateway_id,
            epoch=self.journal.epoch,
            stream=st.name,
            seq=row.seq,
            row_kind=kind,
            row_text=text,
            error=exc,
        )
        self.shipped[st.name] = row.seq
        st.quarantined += 1
        st.last_error = f"row {row.seq} ({kind}) quarantined: {_first_line(exc)}"[:500]
        st.last_error_at = datetime.now(UTC)
        self.metrics.quarantined.labels(st.name).inc()
        # The row's content may be a resident's data: the log names the row, not its values.
        log.error(
            "journal %s row %d refused by the database and quarantined (%s)",
            st.name,
            row.seq,
            type(exc).__name__,
        )

    async def _update_lag(self) -> None:
        for name, st in self._streams.items():
            head = await asyncio.to_thread(self.journal.head, name)
            st.head = head
            self.metrics.journal_head.labels(name).set(head)
            self.metrics.shipper_lag_events.labels(name).set(
                max(0, head - self.shipped.get(name, 0))
            )
            st.oldest = None
            if head > self.shipped.get(name, 0):
                oldest = await asyncio.to_thread(st.read, self.shipped.get(name, 0), 1)
                if oldest:
                    first = oldest[0]
                    st.oldest = first.at if isinstance(first, EngineLogRow) else first.received_at
        rec = self._streams["records"].oldest
        self.lag_seconds = max(0.0, (self.clock.now() - rec).total_seconds()) if rec else 0.0
        self.metrics.shipper_lag_seconds.set(self.lag_seconds)

    async def _prune(self) -> None:
        loop = asyncio.get_running_loop()
        removed = await loop.run_in_executor(
            self.writer, self.journal.prune, dict(self.shipped), self.clock.now()
        )
        if removed:
            log.info("pruned %d shipped journal rows", removed)
