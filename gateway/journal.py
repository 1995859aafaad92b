"""The gateway's durable journal: an event is safe once it is here, not once it is in TimescaleDB.

SQLite in WAL mode with ``synchronous=FULL``: each commit of inputs is fsynced, and one commit
carries every message that arrived while the previous one ran (group commit), so the cost of an
fsync is shared by the whole batch. The engine's own writes skip their fsync (:func:`_relaxed`
says why that loses nothing an input cannot rebuild). Just-committed records are also kept in
memory for the engine and the shipper (:meth:`Journal.recent`). The broker is acknowledged only
after :meth:`Journal.commit` returns. A unique index on the record key makes redelivered
messages harmless: they are recognised as duplicates and acknowledged again without a second
row.

Rows leave by the shipper (see ``gateway.shipper``), which copies them to TimescaleDB; shipped
rows are kept for ``dedupe_retention`` so a late redelivery is still recognised.

The journal has an ``epoch``: a random id fixed when the file is created. The database keys its
shipping watermark on it, so a new journal file never inherits an old file's sequence numbers.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from devices.decoders import Decoded
from devices.records import RECORDS, EventRecord, Record
from devices.storable import escape_text

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_type TEXT NOT NULL,
    key TEXT NOT NULL,
    scheme TEXT NOT NULL,
    topic TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_key ON records (record_type, key);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    topic TEXT NOT NULL,
    scheme TEXT,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload BLOB NOT NULL,
    payload_size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS engine_state (key TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS device_contact (
    scheme TEXT NOT NULL,
    device_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (scheme, device_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (sent, seq);
CREATE TABLE IF NOT EXISTS engine_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    at TEXT NOT NULL,
    body TEXT NOT NULL
);
"""

STREAMS = ("records", "dead_letters", "engine_log")

# Records kept in memory after their commit (``Journal.recent``): the engine and the shipper
# read what was just committed from here instead of reading it back from SQLite and validating
# its JSON again. Older rows come from the file as before.
TAIL_MAX = 4096

_CONTACT = (
    "INSERT INTO device_contact (scheme, device_id, received_at) VALUES (?, ?, ?)"
    " ON CONFLICT (scheme, device_id) DO UPDATE SET received_at = excluded.received_at"
    " WHERE excluded.received_at > device_contact.received_at"
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    detail: str
    payload: bytes  # already truncated
    payload_size: int
    scheme: str | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """What one MQTT message became: accepted records, or a dead letter."""

    topic: str
    received_at: datetime
    records: Sequence[Decoded] = ()
    dead_letter: DeadLetter | None = None


@dataclass(frozen=True, slots=True)
class CommitResult:
    """Per message: how many of its records were new, how many duplicates."""

    new: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journaled input. ``record`` is None only for a row this version cannot read (written
    by an older version that accepted what is now refused): ``error`` says why, ``raw`` holds
    the stored text, and the shipper quarantines it instead of stopping on it."""

    seq: int
    record_type: str
    key: str
    scheme: str
    topic: str
    received_at: datetime
    record: Record | None
    raw: str = ""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class JournalDeadLetter:
    seq: int
    received_at: datetime
    topic: str
    scheme: str | None
    reason: str
    detail: str
    payload: bytes
    payload_size: int


@dataclass
class JournalStats:
    commits: int = 0
    committed_messages: int = 0
    heads: dict[str, int] = field(default_factory=dict)


class JournalError(Exception):
    """The journal could not be opened or written; the gateway must not acknowledge."""


class Journal:
    """One SQLite file. ``commit`` is for one writer thread; reads may come from another."""

    def __init__(self, path: Path, dedupe_retention: timedelta = timedelta(hours=72)) -> None:
        self.path = path
        self.dedupe_retention = dedupe_retention
        self.epoch = ""
        self.stats = JournalStats()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        # The records committed by this process, in sequence order, at most ``2 * TAIL_MAX``;
        # every committed record with ``seq >= _tail_from`` is in it (None: not open yet).
        self._tail: list[JournalRecord] = []
        self._tail_from: int | None = None
        self._tail_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def open(self) -> None:
        """Create or open the file; fails loudly at start-up rather than at the first alarm."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            self._writer.executescript(_SCHEMA)
            row = self._writer.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
            if row is None:
                self.epoch = str(uuid.uuid4())
                self._writer.execute("INSERT INTO meta VALUES ('epoch', ?)", (self.epoch,))
            else:
                self.epoch = row[0]
            self._reader = self._connect()
            self._rekey_events(self._writer)
            self._fill_contact(self._writer)
            for stream in STREAMS:
                self.stats.heads[stream] = self.head(stream)
            with self._tail_lock:
                self._tail = []
                self._tail_from = self.stats.heads["records"] + 1
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc

    @staticmethod
    def _rekey_events(conn: sqlite3.Connection) -> None:
        """Events were keyed by event_id alone before de-duplication became per device:
        re-key old rows once, so a redelivery of one of them is still recognised."""
        done = conn.execute("SELECT 1 FROM meta WHERE key = 'event_keys'").fetchone()
        if done is not None:
            return
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE records SET key = scheme || '/' || json_extract(body, '$.device_id')"
            " || '/' || key WHERE record_type = 'event' AND length(key) = 36"
            " AND instr(key, '/') = 0 AND json_extract(body, '$.device_id') IS NOT NULL"
        )
        conn.execute("INSERT INTO meta VALUES ('event_keys', 'scheme/device/event_id')")
        conn.execute("COMMIT")

    @staticmethod
    def _fill_contact(conn: sqlite3.Connection) -> None:
        """Journals written before ``device_contact`` existed: fill it once from the events."""
        done = conn.execute("SELECT 1 FROM meta WHERE key = 'device_contact'").fetchone()
        if done is not None:
            return
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT OR REPLACE INTO device_contact (scheme, device_id, received_at)"
            " SELECT scheme, json_extract(body, '$.device_id'), MAX(received_at) FROM records"
            " WHERE record_type = 'event' AND json_extract(body, '$.device_id') IS NOT NULL"
            " GROUP BY 1, 2"
        )
        conn.execute("INSERT INTO meta VALUES ('device_contact', 'kept on commit')")
        conn.execute("COMMIT")

    def close(self) -> None:
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None
        with self._tail_lock:
            self._tail, self._tail_from = [], None

    def commit(self, batch: Sequence[Incoming]) -> list[CommitResult]:
        """Write a batch in one transaction (one fsync) and say what was new."""
        conn = self._writer
        if conn is None:
            raise JournalError("journal is not open")
        results: list[CommitResult] = []
        written: list[JournalRecord] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in batch:
                received = item.received_at.isoformat()
                # A dead letter records hostile input: its text is escaped so that SQLite
                # (and later PostgreSQL) can hold it. Accepted records are storable already.
                topic = escape_text(item.topic)
                new = dup = 0
                for rec in item.records:
                    body = RECORDS.dump_json(rec.record).decode()
                    rtype = rec.record_type.value
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO records"
                        " (record_type, key, scheme, topic, received_at, body)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (rtype, rec.key, rec.scheme, topic, received, body),
                    )
                    if cur.rowcount == 1:
                        new += 1
                        written.append(
                            JournalRecord(
                                int(cur.lastrowid or 0),
                                rtype,
                                rec.key,
                                rec.scheme,
                                topic,
                                item.received_at,
                                rec.record,
                                body,
                            )
                        )
                        if isinstance(rec.record, EventRecord):
                            # Last contact per device, kept as events arrive: a restart reads
                            # it instead of grouping days of events (seconds on a big journal).
                            conn.execute(_CONTACT, (rec.scheme, rec.record.device_id, received))
                    else:
                        dup += 1
                dl = item.dead_letter
                if dl is not None:
                    conn.execute(
                        "INSERT INTO dead_letters (received_at, topic, scheme, reason, detail,"
                        " payload, payload_size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            received,
                            topic,
                            escape_text(dl.scheme) if dl.scheme is not None else None,
                            escape_text(dl.reason),
                            escape_text(dl.detail),
                            dl.payload,
                            dl.payload_size,
                        ),
                    )
                results.append(CommitResult(new, dup))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise JournalError(f"journal commit failed: {exc}") from exc
        self.stats.commits += 1
        self.stats.committed_messages += len(batch)
        if written:
            self._remember(written)
        return results

    def _remember(self, written: list[JournalRecord]) -> None:
        """Keep just-committed records for ``recent`` (only after COMMIT: never a row that
        could still roll back)."""
        with self._tail_lock:
            if self._tail_from is None:
                return
            tail = self._tail
            tail.extend(written)
            if len(tail) > 2 * TAIL_MAX:
                del tail[: len(tail) - TAIL_MAX]
                self._tail_from = tail[0].seq

    def recent(self, after_seq: int, limit: int) -> list[JournalRecord] | None:
        """``read_records`` from memory, when every record after ``after_seq`` was committed
        by this process and is still kept (the same records, as committed: not read back and
        validated again); None when the file must be read instead. Cheap: safe on the loop."""
        with self._tail_lock:
            start = self._tail_from
            if start is None or after_seq + 1 < start:
                return None
            tail = self._tail
            i = bisect.bisect_right(tail, after_seq, key=_seq)
            return tail[i : i + limit]

    def head(self, stream: str) -> int:
        """The highest sequence number written to a stream (0 when empty)."""
        row = self._read("SELECT COALESCE(MAX(seq), 0) FROM " + _table(stream))
        return int(row[0][0])

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._reader is None:
            raise JournalError("journal is not open")
        with self._read_lock:
            return self._reader.execute(sql, args).fetchall()

    def read_records(self, after_seq: int, limit: int) -> list[JournalRecord]:
        kept = self.recent(after_seq, limit)
        if kept is not None:
            return kept
        rows = self._read(
            "SELECT seq, record_type, key, scheme, topic, received_at, body FROM records"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [_record(*r) for r in rows]

    def read_dead_letters(self, after_seq: int, limit: int) -> list[JournalDeadLetter]:
        rows = self._read(
            "SELECT seq, received_at, topic, scheme, reason, detail, payload, payload_size"
            " FROM dead_letters WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            JournalDeadLetter(
                r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5], bytes(r[6]), r[7]
            )
            for r in rows
        ]

    def prune(self, shipped: dict[str, int], now: datetime | None = None) -> int:
        """Drop shipped rows: records after the dedupe window, dead letters at once.

        Runs on the writer thread (it writes). AUTOINCREMENT means a sequence number is
        never handed out twice, even once every row below it is gone.
        """
        if self._writer is None:
            raise JournalError("journal is not open")
        cutoff = ((now or datetime.now(UTC)) - self.dedupe_retention).isoformat()
        cur = self._writer.execute(
            "DELETE FROM records WHERE seq <= ? AND received_at < ?",
            (shipped.get("records", 0), cutoff),
        )
        removed = cur.rowcount
        if removed:
            upto = shipped.get("records", 0)
            with self._tail_lock:
                self._tail = [
                    r
                    for r in self._tail
                    if not (r.seq <= upto and r.received_at.isoformat() < cutoff)
                ]
        cur = self._writer.execute(
            "DELETE FROM dead_letters WHERE seq <= ?", (shipped.get("dead_letters", 0),)
        )
        removed += cur.rowcount
        cur = self._writer.execute(
            "DELETE FROM engine_log WHERE seq <= ?", (shipped.get("engine_log", 0),)
        )
        return removed + cur.rowcount


@dataclass(frozen=True, slots=True)
class EngineCommit:
    """What one engine pass changed, written in one transaction with its watermark."""

    watermark: int
    upserts: dict[str, str]  # engine_state key -> JSON
    deletes: list[str]
    outbox: list[tuple[str, str]]  # (topic, JSON payload)
    log: list[tuple[str, str, str]]  # (stream, ISO time, JSON body)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    topic: str
    payload: str


@dataclass(frozen=True, slots=True)
class EngineLogRow:
    seq: int
    stream: str
    at: datetime
    body: dict[str, Any]


class EngineStore:
    """The engine's slice of the journal: its state rows, outbox and log. Writer thread only
    for writes (``commit``, ``mark_sent``, ``prune``); reads go through the journal reader."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def _w(self) -> sqlite3.Connection:
        conn = self.journal._writer
        if conn is None:
            raise JournalError("journal is not open")
        return conn

    def load(self) -> dict[str, Any]:
        rows = self.journal._read("SELECT key, body FROM engine_state")
        return {k: json.loads(b) for k, b in rows}

    def commit(self, c: EngineCommit, now: datetime) -> None:
        conn = self._w()
        try:
            _relaxed(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO engine_state (key, body) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET body = excluded.body",
                list(c.upserts.items()),
            )
            conn.executemany("DELETE FROM engine_state WHERE key = ?", [(k,) for k in c.deletes])
            conn.execute(
                "INSERT INTO engine_state (key, body) VALUES ('watermark', ?)"
                " ON CONFLICT (key) DO UPDATE SET body = excluded.body",
                (json.dumps(c.watermark),),
            )
            created = now.isoformat()
            conn.executemany(
                "INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)",
                [(t, p, created) for t, p in c.outbox],
            )
            conn.executemany("INSERT INTO engine_log (stream, at, body) VALUES (?, ?, ?)", c.log)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise JournalError(f"engine commit failed: {exc}") from exc
        finally:
            _strict(conn)

    def last_contact(self) -> dict[str, datetime]:
        """``"<scheme>/<device>"`` -> when the journal last received an event from it (kept
        as events are committed, so it outlives the pruning of the events themselves)."""
        rows = self.journal._read("SELECT scheme, device_id, received_at FROM device_contact")
        return {f"{s}/{d}": datetime.fromisoformat(t) for s, d, t in rows}

    def unsent(self, limit: int = 500) -> list[OutboxRow]:
        rows = self.journal._read(
            "SELECT seq, topic, payload FROM outbox WHERE sent = 0 ORDER BY seq LIMIT ?", (limit,)
        )
        return [OutboxRow(*r) for r in rows]

    def mark_sent(self, seqs: list[int]) -> None:
        # One transaction: in autocommit mode each UPDATE of ``executemany`` was a transaction
        # (an fsync) of its own, and ingest's commits queued behind them on the writer thread.
        with self._transaction("outbox mark sent") as conn:
            conn.executemany("UPDATE outbox SET sent = 1 WHERE seq = ?", [(s,) for s in seqs])
            # Sent rows are history only in the database's records; keep the outbox small.
            conn.execute("DELETE FROM outbox WHERE sent = 1 AND seq < ?", (min(seqs) - 1000,))

    def mark_abandoned(self, seqs: list[int]) -> None:
        """Rows the publisher gave up on (refused or unacknowledged too often): kept, not
        retried; the control room has been told (see ``gateway.outbox``)."""
        with self._transaction("outbox mark abandoned") as conn:
            conn.executemany("UPDATE outbox SET sent = 2 WHERE seq = ?", [(s,) for s in seqs])

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        conn = self._w()
        try:
            _relaxed(conn)
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise JournalError(f"{what} failed: {exc}") from exc
        finally:
            _strict(conn)

    def enqueue(
        self, outbox: list[tuple[str, str]], log: list[tuple[str, str, str]], now: datetime
    ) -> None:
        """Add messages and log rows outside an engine pass (delivery alerts), in one commit."""
        conn = self._w()
        try:
            _relaxed(conn)
            conn.execute("BEGIN IMMEDIATE")
            created = now.isoformat()
            conn.executemany(
                "INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)",
                [(t, p, created) for t, p in outbox],
            )
            conn.executemany("INSERT INTO engine_log (stream, at, body) VALUES (?, ?, ?)", log)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise JournalError(f"outbox enqueue failed: {exc}") from exc
        finally:
            _strict(conn)

    def read_log(self, after_seq: int, limit: int) -> list[EngineLogRow]:
        rows = self.journal._read(
            "SELECT seq, stream, at, body FROM engine_log WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            EngineLogRow(r[0], r[1], datetime.fromisoformat(r[2]), json.loads(r[3])) for r in rows
        ]


def _relaxed(conn: sqlite3.Connection) -> None:
    """The engine's own writes (state, outbox, log, sent marks) commit without an fsync.

    In WAL mode a commit at ``synchronous=NORMAL`` is in the WAL file when it returns: a
    killed process (SIGKILL, a crash) loses nothing, only a power cut or a kernel crash can.
    Those lose at most what was written since the last fsync, and the next input's commit
    (``synchronous=FULL``) fsyncs the whole WAL, these writes with it. Everything the engine
    writes is derived from journaled inputs, which are always fsynced before the broker is
    acknowledged: after a power cut the engine replays them from its last durable watermark
    and makes the same alarms (their ids are derived from the input) and offers again. Nothing
    that anyone acted on can be lost that way: an action (an accept, say) is an input, and its
    fsync makes durable every engine write before it. docs/reliability.md says the same.
    """
    conn.execute("PRAGMA synchronous=NORMAL")


def _strict(conn: sqlite3.Connection) -> None:
    """Back to ``synchronous=FULL`` for ingest's commits (acknowledged to the broker)."""
    conn.execute("PRAGMA synchronous=FULL")


def _record(
    seq: int, record_type: str, key: str, scheme: str, topic: str, received: str, body: str
) -> JournalRecord:
    at = datetime.fromisoformat(received)
    try:
        record: Record = RECORDS.validate_json(body)
    except ValidationError:
        # Rows written before records carried their tag: the column has it.
        try:
            record = RECORDS.validate_python({**json.loads(body), "record_type": record_type})
        except ValidationError as exc:
            err = exc.errors()[0]
            why = ".".join(str(p) for p in err["loc"]) + ": " + err["msg"]
            return JournalRecord(seq, record_type, key, scheme, topic, at, None, body, why[:300])
        except (ValueError, TypeError, RecursionError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else repr(exc)
            return JournalRecord(seq, record_type, key, scheme, topic, at, None, body, why[:300])
    return JournalRecord(seq, record_type, key, scheme, topic, at, record, body)


def _seq(r: JournalRecord) -> int:
    return r.seq


def _table(stream: str) -> str:
    if stream not in STREAMS:
        raise ValueError(f"unknown journal stream {stream!r}")
    return stream
