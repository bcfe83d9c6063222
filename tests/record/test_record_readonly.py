"""Read-only record commands: verify/show/list/export and qa review change nothing they inspect (a chmod 444 copy
keeps its bytes, an empty or foreign file stays what it was), exports never replace what is not a regular file and
are written with the umask's permissions; on SQLite INSERT OR REPLACE cannot rewrite a row."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fillfinish.cli import app
from fillfinish.record.store import RecordOpenError, RecordStore, RecordWriteError

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def record(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "record.db"
    with RecordStore(f"sqlite:///{path}") as store:
        bid = store.create_batch(product="P", product_code="PC", recipe_name="r", recipe_version="1",
                                 recipe_hash="0" * 64, recipe_snapshot="# recipe", lot="L", planned_vials=1,
                                 operator="op", mode="production", site_config={})
        store.append(bid, "state", {"from": "Stopped", "to": "Resetting", "trigger": "Reset", "reason": ""}, "op")
    return path, bid


def test_verify_show_list_export_on_a_chmod_444_copy_change_nothing(record: tuple[Path, str], tmp_path: Path) -> None:
    path, bid = record
    folder = tmp_path / "ro"
    folder.mkdir()
    copy = folder / "copy.db"
    shutil.copyfile(path, copy)
    os.chmod(copy, 0o444)
    before, files = digest(copy), sorted(os.listdir(folder))
    for args in (["record", "verify"], ["record", "show", bid], ["record", "list"], ["qa", "review", bid],
                 ["record", "export", bid, "--format", "json", "--out", str(tmp_path / "out.json")]):
        code, out, err = invoke(*args, "--db", str(copy))
        assert code == 0, (args, out, err)
    assert digest(copy) == before, "the inspected file is unchanged"
    assert sorted(os.listdir(folder)) == files, "no -wal/-shm or other file was left beside it"
    with pytest.raises(RecordWriteError, match="read-only"):
        RecordStore(f"sqlite:///{copy}", read_only=True).append(bid, "operator", {"command": "Hold"}, "x")


def test_empty_and_foreign_files_are_reported_and_left_alone(tmp_path: Path) -> None:
    empty, text, foreign = tmp_path / "empty.db", tmp_path / "notes.txt", tmp_path / "other.db"
    empty.write_bytes(b"")
    text.write_text("not a database at all\n" * 10)
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    sums = {p: digest(p) for p in (empty, text, foreign)}
    for p, message in ((empty, "no batch record"), (text, "not a fillfinish batch record"),
                       (foreign, "not a fillfinish record")):
        code, _, err = invoke("record", "verify", "--db", str(p))
        assert code == 1 and message in err, err
        assert digest(p) == sums[p]
    with sqlite3.connect(foreign) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "journal mode not switched to WAL"
    with pytest.raises(RecordOpenError):
        RecordStore(f"sqlite:///{tmp_path / 'missing.db'}", read_only=True)
    assert not (tmp_path / "missing.db").exists()


def test_export_never_replaces_what_is_not_a_regular_file(record: tuple[Path, str], tmp_path: Path) -> None:
    path, bid = record
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    for out in (fifo, link, Path("/dev/null")):
        code, _, err = invoke("record", "export", bid, "--format", "json", "--out", str(out), "--db", str(path))
        assert code == 1 and "not a regular file" in err or "a FIFO" in err or "symbolic link" in err \
            or "a device" in err, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and target.read_text() == "old"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    old = os.umask(0o022)
    try:
        code, _, err = invoke("record", "export", bid, "--format", "json", "--out", str(tmp_path / "new.json"),
                              "--db", str(path))
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o644


def test_insert_or_replace_of_an_existing_row_is_refused(record: tuple[Path, str]) -> None:
    path, bid = record
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT id, batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash FROM entry "
                           "LIMIT 1").fetchone()
        for sql, args in (("INSERT OR REPLACE INTO entry (id, batch_id, seq, global_seq, ts, kind, actor, data, "
                           "prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)", (*row[:7], '{"forged": true}', *row[8:])),
                          ("REPLACE INTO batch (batch_id, created_at, product, product_code, recipe_name, "
                           "recipe_version, recipe_hash, recipe_snapshot, lot, planned_vials, operator, mode, "
                           "site_config, header_hash) SELECT batch_id, created_at, 'forged', product_code, "
                           "recipe_name, recipe_version, recipe_hash, recipe_snapshot, lot, planned_vials, operator, "
                           "mode, site_config, header_hash FROM batch", ())):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql, args)
    with RecordStore(f"sqlite:///{path}", read_only=True) as store:
        assert store.verify(bid).ok


def test_read_only_open_reads_and_cannot_write(db_url: str) -> None:
    """SQLite and PostgreSQL: a read-only store reads and verifies; a write through its engine is refused."""
    from sqlalchemy import text

    with RecordStore(db_url) as store:
        bid = store.create_batch(product="P", product_code="PC", recipe_name="r", recipe_version="1",
                                 recipe_hash="0" * 64, recipe_snapshot="# recipe", lot="L", planned_vials=1,
                                 operator="op", mode="production", site_config={})
        store.append(bid, "operator", {"command": "Hold", "reason": "1"}, "op")
    with RecordStore(db_url, read_only=True) as ro:
        assert [e.kind for e in ro.entries(bid)] == ["operator"] and ro.verify(bid).ok
        with pytest.raises(Exception, match="(?i)read.only|readonly|query_only|attempt to write"):
            with ro.engine.connect() as conn, conn.begin():
                conn.execute(text("CREATE TABLE sneaky (x integer)"))
