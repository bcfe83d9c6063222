"""Recovery from a header-only record, abort/resume of a batch that is not Held, a signal as a recovery cause, and
the one-controller-per-line lock keyed on the database's identity (no devices needed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from fillfinish.batch.history import BatchHistory
from fillfinish.batch.recovery import not_held_reason, recover, unfinished_batches
from fillfinish.lock import RecordBusy, database_identity, exclusive, note_batch
from fillfinish.record.store import RecordStore
from fillfinish.record.verify import verify


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    yield s
    s.close()


def new_batch(store: RecordStore, line: str | None = None) -> str:
    return store.create_batch(product="P", product_code="PC", recipe_name="r", recipe_version="1",
                              recipe_hash="0" * 64, recipe_snapshot="# recipe", lot="L", planned_vials=3,
                              operator="op", mode="production", site_config={"line": {"id": line}} if line else {})


def test_header_only_record_recovers_to_stopped_with_a_disposition(store: RecordStore) -> None:
    bid = new_batch(store)  # killed right after the header was written
    report = recover(store, bid, now=store.batch(bid).created_at.timestamp() + 10)
    h = BatchHistory.from_entries(store.entries(bid))
    assert report.state_after == "Stopped" and h.finished and h.disposition["suitable"] is False
    assert verify(store, bid).ok
    assert unfinished_batches(store) == [], "a new batch may start"


def test_signal_cause_is_not_an_unclean_shutdown(store: RecordStore) -> None:
    bid = new_batch(store)
    for frm, to in (("Stopped", "Resetting"), ("Resetting", "Idle"), ("Idle", "Starting"), ("Starting", "Execute")):
        store.append(bid, "state", {"from": frm, "to": to, "trigger": "x", "reason": ""}, "system")
    recover(store, bid, now=store.last_entry(bid).ts.timestamp() + 1, cause="SIGTERM received")
    entries = store.entries(bid)
    rec = [e for e in entries if e.kind == "recovery"][0].data
    assert rec["unclean_shutdown"] is False and rec["cause"] == "SIGTERM received"
    assert not [e for e in entries if e.kind == "exception" and e.data.get("kind") == "monitoring_gap"]
    assert entries[-1].data["to"] == "Held" and "SIGTERM" in entries[-1].data["reason"]


def test_abort_of_a_batch_that_is_not_held_says_what_to_do(store: RecordStore) -> None:
    bid = new_batch(store)
    store.append(bid, "state", {"from": "Stopped", "to": "Resetting", "trigger": "Reset", "reason": ""}, "op")
    why = not_held_reason(store, bid, "abort")
    assert why and "not Held" in why and "batch recover" in why and "Unhold" not in why
    recover(store, bid, now=store.last_entry(bid).ts.timestamp() + 1)
    assert "ended Stopped with a disposition" in (not_held_reason(store, bid, "resume") or "")


def test_unfinished_batches_of_one_line(store: RecordStore) -> None:
    a, b = new_batch(store, "line-1"), new_batch(store, "line-2")
    assert unfinished_batches(store, "line-1") == [a] and unfinished_batches(store, "line-2") == [b]


def test_lock_is_keyed_on_the_database_not_the_url_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spellings = ["sqlite:///race.db", f"sqlite:///{tmp_path}/race.db", f"sqlite:///{tmp_path}/./sub/../race.db"]
    os.symlink(tmp_path / "race.db", tmp_path / "alias.db")
    spellings.append("sqlite:///alias.db")
    assert len({database_identity(u) for u in spellings}) == 1
    pg = {database_identity(u) for u in ("postgresql+psycopg://u:p@localhost/ebr", "postgresql://x@127.0.0.1:5432/ebr",
                                         "postgresql+psycopg://u@localhost:5432/ebr?sslmode=require")}
    assert len(pg) == 1 and database_identity("postgresql://u@localhost/other") not in pg
    with exclusive(spellings[0], "fillfinish run", "line-1"):
        note_batch("B-1")
        for url in spellings[1:]:
            with pytest.raises(RecordBusy, match=r"pid \d+, fillfinish run, line line-1, batch B-1"):
                with exclusive(url, "fillfinish run", "line-1"):
                    pass
        with exclusive(spellings[1], "fillfinish run", "line-2"):  # another line may share the database
            pass
