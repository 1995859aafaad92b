"""The gateway process: journal, ingest, shipper and HTTP, owned by one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import uvicorn
from prometheus_client import generate_latest

from api_models import IngestStats, Readiness, Role
from devices.decoders import Decoded
from devices.records import RECORDS, RecordType
from devices.scheme import load_scheme
from devices.visits import load_schedules
from gateway.api import ApiDeps, create_app
from gateway.api.deps import AuthContext
from gateway.api.live import EngineLiveView
from gateway.auth.audit import AUDIT_ROLE, AuditTrail
from gateway.auth.bootstrap import ensure_dev_accounts
from gateway.auth.limiter import Limits, SignInLimiter
from gateway.auth.store import UserStore
from gateway.clock import scaled
from gateway.config import Settings
from gateway.engine.shell import EngineService
from gateway.ingest import Ingest
from gateway.journal import CommitResult, Incoming, Journal
from gateway.metrics import Metrics
from gateway.queries import Pool, Queries, write_audit
from gateway.registry import SchemeRegistry
from gateway.shipper import Shipper
from gateway.standby import BUSY_WAIT_S, JournalLock
from gateway.startup import StartupError, process_age

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    # The gateway owns signal handling; uvicorn must not re-raise SIGTERM after serving.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen_socket(host: str, port: int) -> socket.socket:
    """The HTTP listening socket, or a :class:`StartupError` naming the setting."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(
            f"TELECARE_HTTP__HOST/PORT: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return sock


class Gateway:
    def __init__(self, settings: Settings, *, standby: bool = False) -> None:
        began = time.monotonic()
        # One gateway per journal; a standby waits for it (gateway/standby.py).
        self.standby = standby
        self.lock = JournalLock(settings.journal.path)
        self._imports_s = process_age(began)  # the start-up line in run()
        self.settings = settings
        # Start-up fails fast: a bad scheme file stops the gateway here, naming the line. The
        # state directory keeps each file's parse, for a faster restart (devices/scheme.py).
        state = settings.journal.path.parent
        files = {p: load_scheme(p, cache_dir=state) for p in settings.schemes}
        schemes = {s.id: s for s in files.values()}
        # A bad visit schedule stops start-up too, naming its line.
        schedules = load_schedules({s.id: p for p, s in files.items()}, settings.visits, schemes)
        self.registry = SchemeRegistry(files.values(), schedules)
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
        self.shipper = Shipper(settings, self.journal, self.writer, self.metrics, self.clock)
        self.engine = EngineService(
            settings, self.registry, self.journal, self.writer, self.metrics, self.clock
        )
        self.ingest.on_committed.append(lambda _items: self.engine.wake.set())
        # The engine's ingest horizon: the broker holds messages for us once the unacknowledged
        # window (Receive Maximum, less a commit batch in flight) or the queue is full.
        held_at = max(
            1,
            min(
                settings.ingest.queue_max,
                settings.ingest.receive_maximum - settings.journal.max_batch,
            ),
        )
        self.engine.fence_at = self.ingest.fences.applied
        self.engine.ingest_state = lambda: (
            self.ingest.connected,
            self.ingest.queue.qsize(),
            held_at,
        )
        self.pool = Pool(settings.db.dsn.get_secret_value())
        a = settings.auth
        self.production = settings.environment == "production"
        self.users = UserStore(a.store, a.session_ttl_s, a.session_idle_s)
        self.audit = AuditTrail(self.users, settings.gateway_id)
        limits = Limits(a.max_account_failures, a.max_address_failures, a.failure_window_s)
        auth = AuthContext(
            store=self.users,
            limiter=SignInLimiter(limits),
            audit=self.audit,
            production=self.production,
            cookie_secure=self.production if a.cookie_secure is None else a.cookie_secure,
            session_ttl_s=a.session_ttl_s,
        )
        live = EngineLiveView(
            self.engine, self.registry, self.clock, settings.engine.handset_timeout_s
        )
        self.app = create_app(
            ApiDeps(
                settings=settings,
                live=live,
                inbox=self,
                queries=Queries(self.pool, settings.gateway_id),
                health=self,
                auth=auth,
            )
        )
        self._built_s = time.monotonic() - began

    # ---- accounts and the audit trail ------------------------------------------------------

    def _first_accounts(self) -> None:
        if not self.production:
            http = self.settings.http
            url = f"http://{http.host}:{http.port}"
            ensure_dev_accounts(
                self.users, self.audit, self.settings.auth.dev_credentials_file, url
            )
        elif not self.users.any_enabled(Role.ADMIN):
            log.warning(
                "no admin account yet: create one with `telecare users add <name> --role admin`"
            )

    async def _write_audit(self, entries: list[dict[str, Any]]) -> None:
        await write_audit(self.pool, entries, AUDIT_ROLE)

    # ---- the API's control inbox (gateway.api.ports.ControlInbox) --------------------------

    async def submit_control(
        self, scheme: str, body: dict[str, Any], key: str | None = None
    ) -> bool:
        """A control-room instruction from the API: journaled like any input, then applied.
        ``key`` (the caller's idempotency key) makes a retry a duplicate: False."""
        now = self.clock.now()
        # Typed at the boundary: a control row the database would refuse is refused here.
        record = RECORDS.validate_python({**body, "record_type": RecordType.CONTROL, "at": now})
        rec = Decoded(RecordType.CONTROL, scheme, key or f"control/{uuid.uuid4()}", record)
        [result] = await self._commit(Incoming(f"api/{scheme}/control", now, records=[rec]))
        return result.new > 0

    async def submit_carer(
        self, scheme: str, rec_type: RecordType, key: str, body: dict[str, Any]
    ) -> None:
        """A carer page's action or presence: journaled like a handset's MQTT message, as
        the same typed record (the page's text meets the same storage rules)."""
        now = self.clock.now()
        record = RECORDS.validate_python({**body, "record_type": rec_type})
        rec = Decoded(rec_type, scheme, key, record)
        await self._commit(Incoming(f"web/{scheme}/carer", now, records=[rec]))

    async def _commit(self, item: Incoming) -> list[CommitResult]:
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self.writer, self.journal.commit, [item])
        self.engine.wake.set()
        return results

    # ---- the API's health view (gateway.api.ports.HealthView) ------------------------------

    def readiness(self) -> Readiness:
        ready = self.journal_open and self.ingest.connected and self.engine.ready
        shipping = self.shipper.status()
        return Readiness(
            journal=self.journal_open,
            engine=self.engine.ready,
            mqtt=self.ingest.connected,
            database=shipping.database_up,
            database_error=shipping.database_error,
            # Per stream: lag, quarantined rows, last error (a refused row is not an outage).
            shipping=shipping.streams,
            ready=ready,
        )

    def ingest_stats(self) -> IngestStats:
        return IngestStats(
            gateway_id=self.settings.gateway_id,
            journal_epoch=self.journal.epoch,
            journal_head={s: self.journal.head(s) for s in ("records", "dead_letters")},
            shipped=dict(self.shipper.shipped),
            shipping=self.shipper.status(),
            schemes=sorted(self.registry.schemes),
        )

    def metrics_text(self) -> bytes:
        return generate_latest(self.metrics.registry)

    async def run(self) -> None:
        try:
            await self._take_journal()
            await self._run()
        finally:
            self.lock.release()

    async def _take_journal(self) -> None:
        path = self.settings.journal.path
        try:
            if self.lock.try_acquire():
                return
        except OSError as exc:  # its directory cannot be made or written: as the journal would
            raise StartupError(
                f"TELECARE_JOURNAL__PATH: cannot open journal {path}: {exc.strerror or exc}"
            ) from None
        if self.standby:
            log.info(
                "standby: gateway pid %s holds the journal %s; taking over when it stops",
                self.lock.holder(),
                path,
            )
            await self.lock.acquire(wait_s=None)
            log.info("standby: the journal is free; taking over")
            return
        if not await self.lock.acquire(wait_s=BUSY_WAIT_S):
            raise StartupError(
                f"the journal {path} is in use by another gateway (pid {self.lock.holder()}):"
                " stop that one, or start this one with --standby to take over when it stops"
            )

    async def _run(self) -> None:
        http = self.settings.http
        # Bind before anything else starts, so a port in use is a one-line refusal at start-up
        # rather than uvicorn exiting from inside the running task group.
        sock = listen_socket(http.host, http.port)
        opening = time.monotonic()
        try:
            self.journal.open()
        except BaseException:
            sock.close()
            raise
        self.journal_open = True
        log.info(
            "gateway %s: journal %s (epoch %s), schemes %s",
            self.settings.gateway_id,
            self.settings.journal.path,
            self.journal.epoch,
            ", ".join(sorted(self.registry.schemes)),
        )
        # Where a (re)start's time went, to read from the log (docs/performance.md, Recovery).
        log.info(
            "start-up: python and imports %s s, schemes read and services built %.2f s,"
            " journal opened %.2f s",
            "?" if self._imports_s is None else f"{self._imports_s:.2f}",
            self._built_s,
            time.monotonic() - opening,
        )
        self._first_accounts()
        server = _Server(
            uvicorn.Config(
                self.app,
                host=http.host,
                port=http.port,
                log_level="warning",
                lifespan="off",
                # A control room's alert stream or a carer page never ends by itself: without
                # a bound, a connected client would hold the gateway's stop forever.
                timeout_graceful_shutdown=3,
            )
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.pool.open()
        try:
            async with asyncio.TaskGroup() as tg:
                loops = [
                    tg.create_task(self.ingest.run(), name="ingest"),
                    tg.create_task(self.shipper.run(), name="shipper"),
                    tg.create_task(self.engine.run(), name="engine"),
                    tg.create_task(self.audit.run(self._write_audit), name="audit"),
                ]
                tg.create_task(server.serve(sockets=[sock]), name="http")
                await stop.wait()
                log.info("stopping: unacknowledged messages stay with the broker")
                server.should_exit = True
                for t in loops:
                    t.cancel()
        finally:
            await self.pool.close()
            self.writer.shutdown(wait=True)
            self.journal.close()
            self.journal_open = False
            sock.close()
