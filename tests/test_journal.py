"""The durable journal: group commit, duplicates, reading for the shipper, pruning, epoch."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devices.decoders import Decoded, RecordType
from devices.events import EventKind
from devices.records import EventRecord
from gateway.journal import DeadLetter, EngineStore, Incoming, Journal, JournalError

T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


def incoming(key: str | None = None, at: datetime = T0) -> Incoming:
    key = key or str(uuid.uuid4())
    event = EventRecord(
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, key),
        device_id="d",
        kind=EventKind.HEARTBEAT,
        occurred_at=at,
    )
    return Incoming(
        "t/s1/devices/d/events", at, records=[Decoded(RecordType.EVENT, "s1", key, event)]
    )


def test_commit_reports_new_and_duplicate_in_one_batch(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    a = incoming("a")
    results = j.commit([a, incoming("b"), incoming("a")])
    assert [(r.new, r.duplicates) for r in results] == [(1, 0), (1, 0), (0, 1)]
    assert [(r.new, r.duplicates) for r in j.commit([a])] == [(0, 1)]
    assert [r.key for r in j.read_records(0, 10)] == ["a", "b"]
    assert j.head("records") == 2


def test_dead_letters_are_kept_with_reason_and_bytes(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    dl = DeadLetter("malformed_json", "Expecting value", b"{oops", 5)
    j.commit([Incoming("t/x", T0, dead_letter=dl)])
    [row] = j.read_dead_letters(0, 10)
    assert (row.reason, row.payload, row.payload_size) == ("malformed_json", b"{oops", 5)


def test_rows_and_epoch_survive_reopen(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    epoch = j.epoch
    j.commit([incoming("a")])
    j.close()
    j2 = Journal(tmp_path / "j.db")
    j2.open()
    assert j2.epoch == epoch
    assert [r.key for r in j2.read_records(0, 10)] == ["a"]
    assert j2.commit([incoming("a")])[0].duplicates == 1
    other = Journal(tmp_path / "other.db")
    other.open()
    assert other.epoch != epoch


def test_prune_keeps_unshipped_and_recent_rows(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", dedupe_retention=timedelta(hours=1))
    j.open()
    j.commit([incoming("old", T0), incoming("new", T0 + timedelta(hours=2)), incoming("late", T0)])
    now = T0 + timedelta(hours=2, minutes=30)
    # Only seq 1..2 shipped: "old" is shipped and past the window; "new" is inside it;
    # "late" is old but not shipped yet.
    removed = j.prune({"records": 2}, now)
    assert removed == 1
    assert [r.key for r in j.read_records(0, 10)] == ["new", "late"]
    # A pruned key is no longer a duplicate, but sequence numbers never go back.
    j.commit([incoming("old", now)])
    assert j.head("records") == 4


def _outbox(j: Journal, n: int) -> None:
    store = EngineStore(j)
    store.enqueue([(f"t/{i}", "{}") for i in range(n)], [], T0)


def test_mark_sent_marks_in_one_transaction_and_keeps_the_outbox_small(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    _outbox(j, 1500)
    store = EngineStore(j)
    seqs = [r.seq for r in store.unsent(2000)]
    before = j._writer.total_changes if j._writer else 0
    store.mark_sent(seqs[:1200])
    assert [r.seq for r in store.unsent(2000)] == seqs[1200:]
    # Rows sent more than 1,000 below the oldest just sent are gone; the writer is idle again.
    store.mark_sent(seqs[1200:])
    assert store.unsent(2000) == []
    left = j._read("SELECT count(*) FROM outbox")[0][0]
    assert left < 1500
    assert j._writer is not None and not j._writer.in_transaction
    assert j._writer.total_changes > before


def test_mark_sent_that_cannot_write_raises_journal_error_and_changes_nothing(
    tmp_path: Path,
) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    _outbox(j, 3)
    store = EngineStore(j)
    seqs = [r.seq for r in store.unsent(10)]
    assert j._writer is not None
    j._writer.execute("PRAGMA busy_timeout=0")
    other = sqlite3.connect(tmp_path / "j.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with pytest.raises(JournalError):
            store.mark_sent(seqs)
        with pytest.raises(JournalError):
            store.mark_abandoned(seqs)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [r.seq for r in store.unsent(10)] == seqs
    assert not j._writer.in_transaction


def _event(device: str, at: datetime, event_id: uuid.UUID | None = None) -> Incoming:
    event = EventRecord(
        event_id=event_id or uuid.uuid4(),
        device_id=device,
        kind=EventKind.HEARTBEAT,
        occurred_at=at,
    )
    return Incoming(f"t/s1/devices/{device}/events", at, records=[Decoded.of("s1", event)])


def test_last_contact_is_kept_on_commit_and_never_moves_back(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    store = EngineStore(j)
    same = uuid.uuid4()
    j.commit([_event("a", T0, same), _event("b", T0)])
    j.commit([_event("a", T0 + timedelta(minutes=5))])
    # A late, older event and a redelivered duplicate leave the newest contact alone.
    j.commit([_event("a", T0 + timedelta(minutes=1)), _event("b", T0 + timedelta(hours=1), same)])
    j.commit([_event("b", T0 + timedelta(hours=2), uuid.uuid4())])
    j.commit([Incoming("t/s1/devices/b/events", T0 + timedelta(hours=3), records=[])])
    assert store.last_contact() == {
        "s1/a": T0 + timedelta(minutes=5),
        "s1/b": T0 + timedelta(hours=2),
    }
    # Pruning the events does not forget when a device was last heard.
    j.prune({"records": 10**9}, now=T0 + timedelta(days=30))
    assert j.read_records(0, 10) == []
    assert store.last_contact()["s1/a"] == T0 + timedelta(minutes=5)


def test_a_journal_from_before_the_contact_table_is_filled_once_at_open(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    j.commit([_event("a", T0), _event("a", T0 + timedelta(minutes=3)), _event("c", T0)])
    assert j._writer is not None
    j._writer.execute("DELETE FROM device_contact")
    j._writer.execute("DELETE FROM meta WHERE key = 'device_contact'")
    j.close()
    j.open()
    assert EngineStore(j).last_contact() == {
        "s1/a": T0 + timedelta(minutes=3),
        "s1/c": T0,
    }


# ---- just-committed records from memory (``Journal.recent``) -----------------------------


def test_recent_records_are_the_records_the_file_holds(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    j.commit([incoming("a"), incoming("b"), incoming("a")])  # a duplicate is not a new row
    j.commit([Incoming("t/x", T0, dead_letter=DeadLetter("bad_json", "x", b"{", 1))])
    j.commit([incoming("c", T0 + timedelta(seconds=1))])
    kept = j.recent(0, 10)
    assert kept is not None and [r.key for r in kept] == ["a", "b", "c"]
    assert j.recent(kept[0].seq, 1) == kept[1:2] and j.recent(kept[-1].seq, 10) == []
    # The same records a reader of the file gets (a fresh process reads them from the file).
    j.close()
    j.open()
    assert j.recent(0, 10) is None
    from_file = j.read_records(0, 10)
    assert from_file == kept


def test_recent_covers_only_what_this_process_committed(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    j.commit([incoming("a")])
    j.close()
    j.open()
    j.commit([incoming("b")])
    assert j.recent(0, 10) is None  # "a" is only in the file
    assert [r.key for r in j.recent(1, 10) or []] == ["b"]
    assert [r.key for r in j.read_records(0, 10)] == ["a", "b"]


def test_recent_is_bounded_and_falls_back_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.journal.TAIL_MAX", 3)
    j = Journal(tmp_path / "j.db")
    j.open()
    for i in range(10):
        j.commit([incoming(f"k{i}")])
    assert len(j._tail) <= 6
    assert j.recent(0, 100) is None
    assert [r.key for r in j.read_records(0, 100)] == [f"k{i}" for i in range(10)]
    assert [r.key for r in j.read_records(8, 100)] == ["k8", "k9"]


def test_a_failed_commit_leaves_nothing_in_memory(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    assert j._writer is not None
    j._writer.execute(
        "CREATE TRIGGER no_z BEFORE INSERT ON records WHEN NEW.key = 'z'"
        " BEGIN SELECT RAISE(ABORT, 'no z'); END"
    )
    with pytest.raises(JournalError):
        j.commit([incoming("y"), incoming("z")])
    assert j.recent(0, 10) == [] and j.read_records(0, 10) == []


def test_engine_writes_skip_the_fsync_and_ingest_commits_keep_it(tmp_path: Path) -> None:
    from gateway.journal import EngineCommit

    j = Journal(tmp_path / "j.db")
    j.open()
    assert j._writer is not None
    full, normal = 2, 1

    def level() -> int:
        assert j._writer is not None
        return int(j._writer.execute("PRAGMA synchronous").fetchone()[0])

    seen: list[int] = []
    j._writer.set_trace_callback(lambda sql: seen.append(level()) if sql == "COMMIT" else None)
    store = EngineStore(j)
    store.commit(EngineCommit(1, {"k": "{}"}, [], [("t/o", "{}")], []), T0)
    store.mark_sent([r.seq for r in store.unsent()])
    j.commit([incoming("a")])
    j._writer.set_trace_callback(None)
    assert seen == [normal, normal, full]
    assert level() == full


def test_a_large_batch_in_several_statements_numbers_and_reports_every_record(
    tmp_path: Path,
) -> None:
    j = Journal(tmp_path / "j.db")
    j.open()
    j.commit([incoming("k0"), incoming("k7")])  # already journaled: duplicates below
    keys = [f"k{i}" for i in range(400)] + ["k5", "k399"]  # and two repeats within the batch
    dl = Incoming("t/x", T0, dead_letter=DeadLetter("bad_json", "x", b"{", 1))
    events = [_event(f"d{i % 7}", T0 + timedelta(seconds=i)) for i in range(310)]
    results = j.commit([*[incoming(k) for k in keys], dl, *events])
    expect_dup = {"k0", "k7"}
    assert [(r.new, r.duplicates) for r in results[:400]] == [
        (0, 1) if k in expect_dup else (1, 0) for k in keys[:400]
    ]
    assert [(r.new, r.duplicates) for r in results[400:]] == [(0, 1), (0, 1), (0, 0)] + [
        (1, 0)
    ] * 310
    kept = j.recent(2, 1000)
    assert kept is not None and len(kept) == 398 + 310
    j.close()
    j.open()
    assert j.read_records(2, 1000) == kept  # the numbers in memory are the file's
    assert j.read_dead_letters(0, 10)[0].reason == "bad_json"
    assert EngineStore(j).last_contact() == {
        "s1/d": T0,  # the ``incoming`` heartbeats' device
        **{
            f"s1/d{d}": T0 + timedelta(seconds=max(i for i in range(310) if i % 7 == d))
            for d in range(7)
        },
    }
