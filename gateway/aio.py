"""A cancellation that a library turned into an ordinary error must still stop the task.

psycopg, cancelled mid-query, cancels the query on the server and waits for its outcome; if the
statement fails for a reason of its own meanwhile (say ``relation "audit_log" does not exist``
while the migration is still running), that error is raised *instead of* the
``CancelledError``. A loop that retries on ``psycopg.Error`` or ``Exception`` would then swallow
the cancel and run on, and the service's TaskGroup would wait for it for ever: a gateway that
should refuse to start hangs instead. Every retrying loop asks this before it retries.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelling(exc: BaseException | None = None) -> None:
    """Re-raise as ``CancelledError`` when the current task has a cancel pending."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError() from exc
