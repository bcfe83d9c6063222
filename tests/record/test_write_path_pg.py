"""The write path's prepared append (decision 0024): a conflict with another writer of the same line is retried, a
lost connection is reopened, and a refused statement is a RecordWriteError; the record verifies afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from fillfinish.record import RecordStore
from fillfinish.record.errors import RecordWriteError
from record_helpers import fill, new_batch


def test_two_writers_of_one_line_take_turns(db_url: str) -> None:
    """Two stores append alternately to one batch of the same line: each conflict re-reads the heads and retries, so
    the chain and the line's ledger stay one unbroken chain."""
    first, second = RecordStore(db_url), RecordStore(db_url)
    try:
        batch = new_batch(first)
        for i in range(6):
            (first if i % 2 else second).append(batch, "vial", {"vial": i + 1, "net_g": 0.5, "status": "accepted",
                                                                 "reason": ""}, "controller")
        assert [e.seq for e in first.entries(batch)] == [1, 2, 3, 4, 5, 6]
        assert first.verify().ok
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_lost_connection_is_reopened(db_url: str) -> None:
    """The backend of the write connection is terminated: that append fails as a RecordWriteError (nothing half
    written), the next one reconnects, prepares again and continues the chain."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    store = RecordStore(db_url)
    try:
        batch = new_batch(store)
        fill(store, batch, 2)
        pid = store._raw.driver_connection.execute("SELECT pg_backend_pid()").fetchone()[0]  # noqa: SLF001
        with store.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        try:
            fill(store, batch, 1, start=2)
        except RecordWriteError:
            pass  # the append that met the dead connection; the next one reconnects
        fill(store, batch, 1, start=3)
        assert store.entries(batch)[-1].data["vial"] == 4
        assert store.verify().ok
    finally:
        store.close()


def test_unknown_batch_is_refused(db_url: str) -> None:
    """An append to a batch id with no header is refused (no foreign key needed on PostgreSQL: the write path reads
    the header first) and nothing is written."""
    store = RecordStore(db_url)
    try:
        new_batch(store)
        with pytest.raises(RecordWriteError, match="unknown batch"):
            store.append("B-19990101-0001", "vial", {"vial": 1, "net_g": 0.5, "status": "accepted", "reason": ""},
                         "controller")
        assert store.verify().ok
    finally:
        store.close()

