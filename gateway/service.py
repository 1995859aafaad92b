"""The gateway process: journal, ingest, shipper and HTTP, owned by one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import uvicorn

from devices.decoders import Decoded
from devices.records import RECORDS, RecordType
from devices.scheme import load_scheme
from gateway.clock import scaled
from gateway.config import Settings
from gateway.engine.shell import EngineService
from gateway.http import create_app
from gateway.ingest import Ingest
from gateway.journal import Incoming, Journal
from gateway.metrics import Metrics
from gateway.registry import SchemeRegistry
from gateway.shipper import Shipper

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    # The gateway owns signal handling; uvicorn must not re-raise SIGTERM after serving.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Start-up fails fast: a bad scheme file stops the gateway here, naming the line.
        self.registry = SchemeRegistry(load_scheme(p) for p in settings.schemes)
        self.metrics = Metrics()
        self.journal = Journal(
            settings.journal.path, timedelta(hours=settings.journal.dedupe_retention_h)
        )
        self.journal_open = False
        # One thread owns every journal write, so SQLite sees a single writer.
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-writer")
        c = settings.clock
        self.clock = scaled(c.speed, c.start, c.anchor)
        self.ingest = Ingest(
            settings, self.registry, self.journal, self.writer, self.metrics, self.clock
        )
        self.shipper = Shipper(settings, self.journal, self.writer, self.metrics)
        self.engine = EngineService(
            settings, self.registry, self.journal, self.writer, self.metrics, self.clock
        )
        self.ingest.on_committed.append(lambda _items: self.engine.wake.set())
        self.app = create_app(self)

    async def submit_control(self, scheme: str, body: dict[str, object]) -> None:
        """A control-room instruction from the API: journaled like any input, then applied."""
        now = self.clock.now()
        # Typed at the boundary: a control row the database would refuse is refused here.
        record = RECORDS.validate_python({**body, "record_type": RecordType.CONTROL, "at": now})
        rec = Decoded(RecordType.CONTROL, scheme, f"control/{uuid.uuid4()}", record)
        item = Incoming(f"api/{scheme}/control", now, records=[rec])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.writer, self.journal.commit, [item])
        self.engine.wake.set()

    async def run(self) -> None:
        self.journal.open()
        self.journal_open = True
        log.info(
            "gateway %s: journal %s (epoch %s), schemes %s",
            self.settings.gateway_id,
            self.settings.journal.path,
            self.journal.epoch,
            ", ".join(sorted(self.registry.schemes)),
        )
        http = self.settings.http
        server = _Server(
            uvicorn.Config(
                self.app, host=http.host, port=http.port, log_level="warning", lifespan="off"
            )
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self.ingest.run(), name="ingest"),
                    tg.create_task(self.shipper.run(), name="shipper"),
                    tg.create_task(self.engine.run(), name="engine"),
                    tg.create_task(server.serve(), name="http"),
                ]
                await stop.wait()
                log.info("stopping: unacknowledged messages stay with the broker")
                server.should_exit = True
                for t in tasks[:3]:
                    t.cancel()
        finally:
            self.writer.shutdown(wait=True)
            self.journal.close()
            self.journal_open = False
