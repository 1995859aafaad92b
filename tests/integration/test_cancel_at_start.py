"""A gateway told to stop while its first database connection is being made must stop.

The real pool and a real database that has no ``audit_log`` yet (the migration not applied):
the audit writer is cancelled at seeded random moments around the pool's first connection.
psycopg_pool swallows about one such cancel in six on Python 3.11 (its ``getconn`` waits with
``asyncio.wait_for``); before ``gateway/aio.py`` the writer then retried for ever and the
gateway, refused by the broker, never exited. 60 tries: a regression survives them all with a
probability of about 1 in 30,000."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

from gateway.auth.audit import AUDIT_ROLE, AuditTrail
from gateway.auth.store import UserStore
from gateway.queries import Pool, write_audit


def test_the_audit_writer_stops_when_cancelled_as_its_pool_connects(
    database: str, tmp_path: Path
) -> None:
    rng = random.Random(20261202)
    audit = AuditTrail(UserStore(tmp_path / "users.sqlite"), "gw-test")
    audit.record("sign_in", username="someone")  # something to write: the INSERT will fail

    async def one(delay_s: float) -> bool:
        pool = Pool(database)
        await pool.open()
        try:

            async def write(entries: list[dict[str, object]]) -> None:
                await write_audit(pool, entries, AUDIT_ROLE)

            task = asyncio.create_task(audit.run(write, retry_max_s=0.05))
            await asyncio.sleep(delay_s)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=10)
            if not done:
                task.cancel()
                await asyncio.wait({task}, timeout=10)
            return bool(done)
        finally:
            await pool.close()

    async def main() -> list[float]:
        hung = []
        for _ in range(60):
            delay = rng.uniform(0.0, 0.02)
            if not await one(delay):
                hung.append(round(delay, 4))
        return hung

    quiet = logging.getLogger("gateway.auth.audit")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the expected "entries wait in the outbox" warnings
    try:
        hung = asyncio.run(main())
    finally:
        quiet.setLevel(level)
    assert hung == [], f"the audit writer ran on after a cancel at {hung} s"
