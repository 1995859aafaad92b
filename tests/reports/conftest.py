"""A fresh, migrated database per test, and a writer for hand-made alarm lifecycles."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from gateway import storage


async def _migrate(dsn: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        return await storage.migrate(conn)


@pytest.fixture
def report_db(database: str) -> Iterator[str]:
    """The DSN of a fresh TimescaleDB database with every migration applied."""
    asyncio.run(_migrate(database))
    yield database
