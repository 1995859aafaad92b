"""Copy the journal into TimescaleDB, in order, exactly once, whether or not the database is up.

Each batch is one transaction: COPY the rows and move this journal's watermark together, so a
crash between the two cannot double a row. While the database is away the journal simply grows
and the shipper retries with capped backoff; dispatch never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any

import psycopg

from gateway import storage
from gateway.config import Settings
from gateway.journal import STREAMS, EngineStore, Journal
from gateway.metrics import Metrics

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 60.0


class Shipper:
    def __init__(
        self, settings: Settings, journal: Journal, writer: Executor, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.writer = writer
        self.metrics = metrics
        self.db_up = False
        self.shipped: dict[str, int] = {}
        self.last_error: str | None = None
        self.engine_store = EngineStore(journal)

    async def run(self) -> None:
        db = self.settings.db
        delay = db.retry_min_s
        last_prune = time.monotonic()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    db.dsn.get_secret_value(), autocommit=True, connect_timeout=5
                ) as conn:
                    await storage.migrate(conn)
                    self.shipped = await storage.load_watermarks(
                        conn, self.settings.gateway_id, self.journal.epoch
                    )
                    self._set_db(True)
                    delay = db.retry_min_s
                    while True:
                        moved = await self.ship_once(conn)
                        if time.monotonic() - last_prune > PRUNE_EVERY_S:
                            last_prune = time.monotonic()
                            await self._prune()
                        if not moved:
                            await asyncio.sleep(db.ship_idle_s)
            except (psycopg.Error, OSError) as exc:
                self._set_db(False)
                self.last_error = str(exc).splitlines()[0] if str(exc) else repr(exc)
                self.metrics.ship_errors.inc()
                log.warning(
                    "database unavailable (%s); journal keeps events; retry in %.1fs",
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
        """Ship one batch of each stream; returns rows moved."""
        limit = self.settings.db.ship_batch
        gw, epoch = self.settings.gateway_id, self.journal.epoch
        moved = 0
        # Each stream: how to read it from the journal, how to COPY it (with its watermark).
        streams: tuple[tuple[str, Any, Any], ...] = (
            ("records", self.journal.read_records, storage.ship_records),
            ("dead_letters", self.journal.read_dead_letters, storage.ship_dead_letters),
            ("engine_log", self.engine_store.read_log, storage.ship_engine_log),
        )
        for name, read, ship in streams:
            rows = await asyncio.to_thread(read, self.shipped.get(name, 0), limit)
            if rows:
                await ship(conn, rows, gw, epoch)
                self.shipped[name] = rows[-1].seq
                self.metrics.shipped.labels(name).inc(len(rows))
                moved += len(rows)
        await self._update_lag()
        return moved

    async def _update_lag(self) -> None:
        for stream in STREAMS:
            head = await asyncio.to_thread(self.journal.head, stream)
            self.metrics.journal_head.labels(stream).set(head)
            self.metrics.shipper_lag_events.labels(stream).set(
                max(0, head - self.shipped.get(stream, 0))
            )
        oldest = await asyncio.to_thread(
            self.journal.read_records, self.shipped.get("records", 0), 1
        )
        age = (datetime.now(UTC) - oldest[0].received_at).total_seconds() if oldest else 0.0
        self.metrics.shipper_lag_seconds.set(max(0.0, age))

    async def _prune(self) -> None:
        loop = asyncio.get_running_loop()
        removed = await loop.run_in_executor(self.writer, self.journal.prune, dict(self.shipped))
        if removed:
            log.info("pruned %d shipped journal rows", removed)
