"""One gateway per journal, and a warm standby that takes the journal over when it goes.

The journal is the gateway's record of what it accepted; two processes driving one journal
would each run an engine over it, page carers twice and fight over one MQTT session. So a
gateway holds an exclusive lock on ``<journal>.lock`` (``flock``) for as long as it runs. The
kernel drops the lock the moment the process ends, however it ends (SIGKILL, a crash, a power
cut of the process), so a lock never goes stale.

A second ``telecare gateway run`` on the same journal waits a few seconds (a stopping gateway
lets go as it exits) and then refuses, naming the holder. ``telecare gateway run --standby``
instead waits for as long as it takes: it has already imported, read its schemes and built its
services, so when the running gateway dies it only opens the journal, restores the engine and
connects (docs/performance.md, Recovery: the cold start it saves).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

from gateway.aio import raise_if_cancelling

log = logging.getLogger(__name__)

POLL_S = 0.02  # how often a standby tries the lock: the most it adds to a takeover
BUSY_WAIT_S = 10.0  # how long a plain start waits for a stopping gateway to let go


class JournalLock:
    """``flock`` on ``<journal>.lock``; the holder's pid is written in it for the message."""

    def __init__(self, journal: Path) -> None:
        self.path = journal.with_name(journal.name + ".lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid the holder wrote, or "unknown"."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return "unknown"
        return text if text.isdigit() else "unknown"

    async def acquire(self, *, wait_s: float | None) -> bool:
        """Take the lock, trying every ``POLL_S`` for ``wait_s`` seconds (None: until it is
        free). False when it was not free in time."""
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while not self.try_acquire():
            raise_if_cancelling()
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
