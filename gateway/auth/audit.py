"""The audit trail: who (user, role), did what (action, target, outcome), when (UTC), from
where (address).

Every entry is first written to a small outbox in the account store (a local SQLite file), so
recording never waits on, or is lost to, a database that is away; a loop in the gateway then
copies entries into the append-only ``audit_log`` table in TimescaleDB through a role that may
INSERT and nothing else (``gateway/sql/003_auth_audit.sql``). The ``telecare users`` command
writes to the same outbox, so changes made there reach the trail when a gateway runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from gateway.aio import raise_if_cancelling
from gateway.auth.store import UserStore

log = logging.getLogger(__name__)

AUDIT_ROLE = "telecare_audit_writer"


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"  # wrong secret, unknown user, disabled user (told apart only here)
    LIMITED = "limited"  # refused by the sign-in limiter
    DENIED = "denied"  # signed in, but the role may not do this


class AuditTrail:
    def __init__(self, store: UserStore, source: str) -> None:
        self.store = store
        self.source = source  # the gateway id, or "cli"
        self.wake = asyncio.Event()

    def record(
        self,
        action: str,
        *,
        username: str | None = None,
        role: str | None = None,
        target: str | None = None,
        outcome: Outcome = Outcome.OK,
        address: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry to the outbox (synchronous, a local fsync'd SQLite write)."""
        entry = {
            "entry_id": str(uuid.uuid4()),
            "at": datetime.now(UTC).isoformat(),  # real UTC time, never scheme time
            "username": username,
            "role": role,
            "action": action,
            "target": target,
            "outcome": outcome.value,
            "address": address,
            "detail": detail or {},
            "source": self.source,
        }
        self.store.outbox_put(json.dumps(entry))
        self.wake.set()

    async def arecord(self, action: str, **kw: Any) -> None:
        """``record`` off the event loop (the SQLite write may wait on a lock)."""
        await asyncio.to_thread(lambda: self.record(action, **kw))

    async def run(
        self,
        write: Callable[[list[dict[str, Any]]], Awaitable[None]],
        retry_max_s: float = 30.0,
    ) -> None:
        """Copy outbox entries to the database until cancelled; entries leave the outbox only
        once the database has them (a re-sent entry is ignored there by its entry id)."""
        delay = 1.0
        while True:
            raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
            batch = await asyncio.to_thread(self.store.outbox_batch)
            if not batch:
                self.wake.clear()
                try:
                    async with asyncio.timeout(5.0):  # not wait_for: it can swallow a cancel (3.11)
                        await self.wake.wait()
                except TimeoutError:
                    pass  # the CLI may have written; look again
                continue
            try:
                await write([json.loads(e) for _seq, e in batch])
            except Exception as exc:  # the database away, the migration not yet applied...
                raise_if_cancelling(exc)  # psycopg can turn a cancel into the query's error
                log.warning(
                    "audit trail: %d entries wait in the outbox (%s)",
                    len(batch),
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, retry_max_s)
                continue
            delay = 1.0
            await asyncio.to_thread(self.store.outbox_done, batch[-1][0])
