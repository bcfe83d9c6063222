"""RecordStore on SQLite and PostgreSQL: append/read, chain links, refusals by the database, errors, threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fillfinish.record import RecordOpenError, RecordStore, RecordWriteError, UnknownBatchError
from fillfinish.record.chain import entry_hash, format_ts

from record_helpers import BATCH_FIELDS, StepClock, fill, new_batch


def test_create_batch_and_read_header(store: RecordStore) -> None:
    """The header comes back as written, with a B-YYYYMMDD-NNNN id numbered per day."""
    first = new_batch(store)
    second = new_batch(store, mode="media_fill", lot="MF-1")
    assert first == "B-20261125-0001"
    assert second == "B-20261125-0002"
    header = store.batch(first)
    for name, value in BATCH_FIELDS.items():
        assert getattr(header, name) == value, name
    assert header.created_at.tzinfo is not None
    assert len(header.header_hash) == 64
    assert [b.batch_id for b in store.batches()] == [first, second]
    assert store.batch(second).mode == "media_fill"


def test_append_returns_committed_chained_entries(store: RecordStore, clock: StepClock) -> None:
    """Entries get seq 1.., UTC microsecond timestamps from the injected clock, and link by prev_hash."""
    batch = new_batch(store)
    header = store.batch(batch)
    first = store.append(batch, "state", {"from": "Idle", "to": "Starting", "trigger": "Start"}, "alice")
    second = store.append(batch, "measurement", {"signal": "particles", "per_m3_0_5um": 12.5, "seq": 1, "flow_l_min": 28.3}, "monitor")
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == header.header_hash
    assert second.prev_hash == first.hash
    assert second.global_seq == first.global_seq + 1
    assert first.ts < second.ts and first.ts.tzinfo == UTC
    assert second.hash == entry_hash(first.hash, batch_id=batch, seq=2, ts=format_ts(second.ts), kind="measurement",
                                     actor="monitor", data={"signal": "particles", "per_m3_0_5um": 12.5, "seq": 1, "flow_l_min": 28.3})
    assert store.entries(batch) == [first, second]
    assert store.entries(batch, kinds=["measurement"]) == [second]
    assert store.entries(batch, kinds="state") == [first]
    assert store.last_entry(batch) == second


def test_batches_have_independent_chains(store: RecordStore) -> None:
    """Each batch starts at seq 1 from its own header hash."""
    a, b = new_batch(store), new_batch(store)
    fill(store, a, 3)
    entry = store.append(b, "phase", {"phase": "uv_cycle", "event": "start"}, "controller")
    assert entry.seq == 1 and entry.prev_hash == store.batch(b).header_hash
    assert store.last_entry(a).seq == 3  # type: ignore[union-attr]
    assert store.verify().ok


def test_entries_survive_reopen(db_url: str, clock: StepClock) -> None:
    """A second store on the same database sees the committed record and continues the chain (migrations idempotent)."""
    with RecordStore(db_url, now=clock) as first:
        batch = new_batch(first)
        fill(first, batch, 4)
    with RecordStore(db_url, now=clock) as second:
        assert [e.seq for e in second.entries(batch)] == [1, 2, 3, 4]
        assert second.append(batch, "vial", {"vial": 5, "status": "accepted", "reason": "ok"}, "controller").seq == 5
        assert second.verify(batch).ok


def test_clock_may_give_unix_seconds(db_url: str) -> None:
    """The controller's Clock.now() (Unix seconds) can drive the record time."""
    with RecordStore(db_url, now=lambda: 1764085000.25) as record:
        batch = new_batch(record)
        entry = record.append(batch, "state", {"from": "Idle", "to": "Starting", "trigger": "Start"}, "controller")
        assert entry.ts == datetime.fromtimestamp(1764085000.25, UTC)
        assert batch.startswith("B-20251125-")


@pytest.mark.parametrize("sql", ["UPDATE entry SET data = '{}'", "DELETE FROM entry", "UPDATE batch SET lot = 'X'",
                                 "DELETE FROM batch", "UPDATE ledger SET seq = 9", "DELETE FROM ledger"])
def test_database_refuses_update_and_delete(store: RecordStore, sql: str) -> None:
    """The triggers of the migration abort any UPDATE or DELETE on the record tables."""
    batch = new_batch(store)
    fill(store, batch, 2)
    with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(text(sql))
    assert len(store.entries(batch)) == 2
    assert store.verify().ok


def test_postgres_refuses_truncate(store: RecordStore) -> None:
    """On PostgreSQL TRUNCATE is refused too (SQLite has no TRUNCATE)."""
    if store.dialect != "postgresql":
        pytest.skip("TRUNCATE exists on PostgreSQL only")
    batch = new_batch(store)
    fill(store, batch, 1)
    for table in ("entry", "ledger", "batch CASCADE"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {table}"))
    assert len(store.entries(batch)) == 1


def test_store_has_no_update_or_delete_api(store: RecordStore) -> None:
    """Nothing on the store changes or removes what was written."""
    names = {n for n in dir(store) if not n.startswith("_")}
    assert not {n for n in names if any(w in n for w in ("update", "delete", "remove", "edit", "purge", "truncate"))}


@pytest.mark.parametrize(
    ("kind", "data", "actor", "message"),
    [
        ("vial", {"w": float("nan")}, "controller", "only finite numbers"),
        ("vial", {"when": datetime(2026, 1, 1, tzinfo=UTC)}, "controller", "datetime"),
        ("vial", ["not", "a", "dict"], "controller", "must be a mapping"),
        ("Vial Entry", {}, "controller", "kind must be lowercase"),
        ("vial", {}, "", "actor must be a non-empty string"),
    ],
)
def test_bad_append_raises_record_write_error(store: RecordStore, kind: str, data: object, actor: str,
                                              message: str) -> None:
    """Bad input raises RecordWriteError naming the cause, and writes nothing."""
    batch = new_batch(store)
    with pytest.raises(RecordWriteError, match=message):
        store.append(batch, kind, data, actor)  # type: ignore[arg-type]
    assert store.entries(batch) == []


def test_append_to_unknown_batch_or_closed_store(store: RecordStore) -> None:
    """Unknown batch and closed store are RecordWriteErrors; reads of an unknown batch are UnknownBatchError."""
    with pytest.raises(RecordWriteError, match="unknown batch 'B-nope'"):
        store.append("B-nope", "vial", {"vial": 1, "status": "accepted", "reason": "in tolerance"}, "controller")
    with pytest.raises(UnknownBatchError):
        store.batch("B-nope")
    with pytest.raises(UnknownBatchError):
        store.entries("B-nope")
    batch = new_batch(store)
    store.close()
    with pytest.raises(RecordWriteError, match="closed"):
        store.append(batch, "vial", {"vial": 1, "status": "accepted", "reason": "in tolerance"}, "controller")


def test_failing_clock_is_a_record_write_error(db_url: str) -> None:
    """Even a broken clock surfaces as RecordWriteError with the cause."""
    clock = StepClock()
    calls = {"n": 0}

    def flaky() -> datetime:
        """Works once (for create_batch), then fails."""
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("clock gone")
        return clock()

    with RecordStore(db_url, now=flaky) as record:
        batch = new_batch(record)
        with pytest.raises(RecordWriteError, match="clock gone"):
            record.append(batch, "vial", {"vial": 1, "status": "accepted", "reason": "in tolerance"}, "controller")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "test"}, "mode must be one of production, media_fill"),
        ({"planned_vials": 0}, "planned_vials must be an integer >= 1"),
        ({"lot": ""}, "lot must be a non-empty string"),
        ({"site_config": {"x": float("inf")}}, "site_config.x"),
    ],
)
def test_bad_batch_fields_are_refused(store: RecordStore, fields: dict[str, object], message: str) -> None:
    """create_batch validates its fields and names the bad one."""
    with pytest.raises(RecordWriteError, match=message):
        new_batch(store, **fields)
    assert store.batches() == []


def test_two_threads_appending_keep_one_consistent_chain(store: RecordStore) -> None:
    """Threads appending to the same and to different batches: contiguous seqs, every chain verifies."""
    shared, own_a, own_b = new_batch(store), new_batch(store), new_batch(store)
    errors: list[BaseException] = []

    def worker(name: str, own: str) -> None:
        """Append alternately to the shared batch and to its own."""
        try:
            for i in range(40):
                store.append(shared, "vial", {"vial": i + 1, "status": "accepted", "reason": name}, name)
                store.append(own, "measurement", {"signal": "particles", "seq": i}, name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n, b)) for n, b in (("t1", own_a), ("t2", own_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    entries = store.entries(shared)
    assert [e.seq for e in entries] == list(range(1, 81))
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    for thread in ("t1", "t2"):
        assert [e.data["vial"] - 1 for e in entries if e.actor == thread] == list(range(40))
    report = store.verify()
    assert report.ok, report.lines()
    assert report.ledger.rows_checked == 3 + 160


def test_bad_urls_are_clear_open_errors(tmp_path: object) -> None:
    """Bad URL, unsupported database, missing file/folder: RecordOpenError with a message, nothing created."""
    with pytest.raises(RecordOpenError, match="not a database URL"):
        RecordStore("not a url at all")
    with pytest.raises(RecordOpenError, match="unsupported database 'mysql'"):
        RecordStore("mysql://u@localhost/x")
    missing = f"{tmp_path}/nope.db"
    with pytest.raises(RecordOpenError, match="database file not found"):
        RecordStore(f"sqlite:///{missing}", create=False)
    with pytest.raises(RecordOpenError, match="folder of the database file does not exist"):
        RecordStore(f"sqlite:///{tmp_path}/no/such/dir/r.db")
    with pytest.raises(RecordOpenError, match="cannot open batch record"):
        RecordStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_in_memory_sqlite_works() -> None:
    """sqlite:// (in memory) is usable for quick experiments, from several threads."""
    with RecordStore("sqlite://", now=StepClock()) as record:
        batch = new_batch(record)
        fill(record, batch, 3)
        assert record.verify().ok


@pytest.mark.unmigrated_db
def test_create_false_never_makes_a_record(db_url: str) -> None:
    """create=False (the CLI's mode) on an empty database is an error, not a new record."""
    with pytest.raises(RecordOpenError, match="no batch record in|database file not found"):
        RecordStore(db_url, create=False)
    RecordStore(db_url).close()
    RecordStore(db_url, create=False).close()


def test_schema_from_a_newer_version_is_a_clear_error(tmp_path: object) -> None:
    """A database migrated by an unknown (newer) revision is refused with the revision named."""
    url = f"sqlite:///{tmp_path}/r.db"
    with RecordStore(url) as record:
        with record.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(RecordOpenError, match="revision identified by '9999'"):
        RecordStore(url)
