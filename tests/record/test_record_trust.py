"""A record only the system could have written (issue 6 points 4 and 7, issue 11 points 2, 3 and 5): the site key
and keyed ledger, canonical stored text, names that cannot lie, several lines on one database, streaming verify."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from fillfinish.record import RecordStore, RecordWriteError
import importlib
from fillfinish.record.chain import canonical_text, entry_hash, entry_hash_text, line_ledger_hash
from fillfinish.record.names import escape_text, valid_actor
from fillfinish.record.render import render_text
from fillfinish.record.sitekey import KEY_ENV, default_key_path, read_key
from record_helpers import fill, new_batch, tamper


def _raw(store: RecordStore, sql: str, **params: object) -> list[dict[str, object]]:
    """Rows of a query as dicts."""
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def test_default_key_is_created_beside_the_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --key or $FILLFINISH_SITE_KEY the key is created on first write beside the database (mode 0600) and
    its fingerprint is on every ledger row."""
    monkeypatch.delenv(KEY_ENV)
    db = tmp_path / "line.db"
    with RecordStore(f"sqlite:///{db}") as store:
        fill(store, new_batch(store), 2)
        path = default_key_path(f"sqlite:///{db}")
        assert path == tmp_path / "line.sitekey" and store.key_path == path
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        fingerprint = read_key(path).fingerprint
        rows = _raw(store, "SELECT key_id, mac FROM ledger")
        assert rows and all(r["key_id"] == fingerprint and len(str(r["mac"])) == 64 for r in rows)
        assert store.verify().key_checked


def test_row_appended_without_the_key_is_reported(store: RecordStore) -> None:
    """An attacker appends an entry and a ledger row with correct hashes but cannot make the MAC."""
    batch = new_batch(store)
    fill(store, batch, 3)
    last = _raw(store, "SELECT * FROM entry WHERE batch_id = :b AND seq = 3", b=batch)[0]
    head = _raw(store, "SELECT * FROM ledger ORDER BY line_seq DESC LIMIT 1")[0]
    ts, data = "2026-11-25T10:00:00.000000Z", '{"accepted":true,"vial":4}'
    digest = entry_hash_text(str(last["hash"]), batch_id=batch, seq=4, ts=ts, kind="vial", actor="controller",
                             data_text=data)
    lseq = int(head["line_seq"]) + 1  # type: ignore[call-overload]
    lhash = line_ledger_hash(str(head["hash"]), line_id="line-1", line_seq=lseq, batch_id=batch, seq=4,
                             record_hash=digest)
    tamper(store,
           ("INSERT INTO ledger (global_seq, batch_id, seq, record_hash, prev_hash, hash, line_id, line_seq, key_id, "
            "mac) VALUES (999, :b, 4, :r, :p, :h, 'line-1', :l, :k, :m)",
            {"b": batch, "r": digest, "p": head["hash"], "h": lhash, "l": lseq, "k": head["key_id"], "m": "0" * 64}),
           ("INSERT INTO entry (batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash) "
            "VALUES (:b, 4, 999, :ts, 'vial', 'controller', :d, :p, :h)",
            {"b": batch, "ts": ts, "d": data, "p": last["hash"], "h": digest}))
    report = store.verify()
    assert report.result(batch).ok  # the batch chain and the ledger's record of it agree ...
    assert not report.ok and report.ledger.problem is not None  # ... but the ledger row is not the store's
    assert (report.ledger.problem.seq, report.ledger.problem.kind) == (lseq, "changed")
    assert "MAC" in report.ledger.problem.detail


def test_duplicate_json_keys_are_refused_by_verify(store: RecordStore) -> None:
    """{"status":"rejected",...,"status":"accepted"} with a hash over what a JSON reader keeps: not canonical."""
    batch = new_batch(store)
    store.append(batch, "vial", {"vial": 1, "status": "accepted", "reason": "ok"}, "controller")
    row = _raw(store, "SELECT * FROM entry WHERE batch_id = :b AND seq = 1", b=batch)[0]
    forged = '{"reason":"ok","status":"rejected","vial":1,"status":"accepted"}'
    assert canonical_text(forged) != forged
    digest = entry_hash(str(row["prev_hash"]), batch_id=batch, seq=1, ts=str(row["ts"]), kind="vial",
                        actor="controller", data=json.loads(forged))
    assert digest == row["hash"]  # Python's reader sees "accepted": the hash alone would not notice
    tamper(store, "UPDATE entry SET data = :d WHERE batch_id = :b AND seq = 1", params={"d": forged, "b": batch})
    result = store.verify(batch).result(batch)
    assert not result.ok and result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (1, "changed")
    assert "canonical" in result.problem.detail


@pytest.mark.parametrize("actor", ["mallory\n999 release qa", "a b", "", "x" * 65, "bob\u202e", "tab\there", "line\n"])
def test_actors_with_control_characters_or_spaces_are_refused(store: RecordStore, actor: str) -> None:
    """Names enter the record only as printable single-line ids."""
    batch = new_batch(store)
    assert not valid_actor(actor)
    with pytest.raises(RecordWriteError, match="actor"):
        store.append(batch, "operator", {"command": "Hold"}, actor)
    with pytest.raises(RecordWriteError):
        new_batch(store, operator=actor)
    assert valid_actor("k.lind") and valid_actor("os:root") and valid_actor("Łukasz")


def test_control_characters_in_a_reason_cannot_print_a_fake_line(store: RecordStore) -> None:
    """The attack of issue 6: a Hold whose reason plants a line '999 ... release ...' in `record show`."""
    batch = new_batch(store)
    planted = "visual\n   999  2026-11-25 10:00:00.000000      release           qa.lindqvist    suitable\x1b[2K"
    store.append(batch, "operator", {"command": "Hold", "reason": planted}, "a.smith")
    shown = render_text(store.batch(batch), store.entries(batch))
    assert not any(line.lstrip().startswith("999") for line in shown.splitlines())
    assert "\x1b" not in shown and "reason=\"visual\\n" in shown
    assert escape_text("a\u202eb\r") == "a\\u202eb\\r"


def test_two_lines_append_at_once_without_loss(db_url: str, tmp_path: Path) -> None:
    """Two stores on one database, each its own line, append from threads at once: every entry is there, each line
    has its own ledger chain, everything verifies."""
    stores = [RecordStore(db_url, line_id=f"line-{i}") for i in (1, 2)]
    try:
        batches = [new_batch(s) for s in stores]
        start = threading.Barrier(2)

        def work(store: RecordStore, batch: str) -> None:
            start.wait()
            fill(store, batch, 40)

        threads = [threading.Thread(target=work, args=(s, b)) for s, b in zip(stores, batches)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report = stores[0].verify()
        assert report.ok, report.lines()
        assert set(report.ledger.heads) == {"line-1", "line-2"}
        assert report.ledger.heads["line-1"][0] == report.ledger.heads["line-2"][0] == 41
        assert [len(stores[0].entries(b)) for b in batches] == [40, 40]
    finally:
        for s in stores:
            s.close()


def test_two_writers_of_one_line_retry_on_conflict(db_url: str) -> None:
    """Two stores of the same line (a controller and a QA workstation) append to one batch: the one whose cached
    heads are stale meets a unique-key conflict, re-reads the heads and retries; nothing forks."""
    first, second = RecordStore(db_url), RecordStore(db_url)
    try:
        batch = new_batch(first)
        for i in range(5):
            first.append(batch, "vial", {"vial": i, "status": "accepted", "reason": "ok"}, "controller")
            second.append(batch, "operator", {"command": "Hold", "reason": str(i)}, "a.smith")
        assert [e.seq for e in first.entries(batch)] == list(range(1, 11))
        assert first.verify().ok
    finally:
        first.close()
        second.close()


def test_record_opened_on_a_line_id_that_is_not_allowed(db_url: str) -> None:
    """Line ids are plain names (they become part of file names and ledger rows)."""
    from fillfinish.record import RecordOpenError

    with pytest.raises(RecordOpenError, match="line id"):
        RecordStore(db_url, line_id="../etc")


def test_parallel_verify_finds_the_same_as_one_process(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes over batch and ledger ranges report the same findings as the single-process walk."""
    batches = [new_batch(store, lot=f"L-{i}") for i in range(4)]
    for b in batches:
        fill(store, b, 12)
    monkeypatch.setattr(importlib.import_module("fillfinish.record.verify"), "PARALLEL_MIN_ROWS", 1)
    assert store.verify(jobs=2).ok
    tamper(store, "UPDATE entry SET data = :d WHERE batch_id = :b AND seq = 5",
           params={"d": '{"vial":99}', "b": batches[2]})
    one, two = store.verify(jobs=1), store.verify(jobs=2)
    assert [(r.batch_id, r.ok, r.problem) for r in one.batches] == [(r.batch_id, r.ok, r.problem) for r in two.batches]
    assert one.ledger.rows_checked == two.ledger.rows_checked == 4 * 13


def test_bulk_built_record_verifies(db_url: str, tmp_path: Path) -> None:
    """bench/make_record.py writes valid chains with the store's own hash functions and key."""
    from bench.make_record import build

    info = build(db_url, 500, per_batch=120, key=str(tmp_path / "bulk.sitekey"))
    assert info["batches"] == 5
    with RecordStore(db_url, key=str(tmp_path / "bulk.sitekey"), create=False) as store:
        report = store.verify()
        assert report.ok and report.key_checked, report.lines()
        assert sum(r.entries_checked for r in report.batches) == 500
        batch = report.batches[-1].batch_id
        store.append(batch, "vial", {"vial": 999, "status": "accepted", "reason": "ok"}, "controller")  # the store carries on from the bulk head
        assert store.verify().ok


def test_key_file_named_by_the_site_config_is_never_created(db_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A key_file from the site config is shared by every line: a missing one is an error, not a new key."""
    monkeypatch.delenv(KEY_ENV)
    missing = tmp_path / "shared" / "site.sitekey"
    with RecordStore(db_url, key_file=missing) as store:
        with pytest.raises(RecordWriteError, match="site init"):
            new_batch(store)
        assert not missing.exists()
