"""Backup while a batch keeps writing, then restore into a new database and verify the copy (Annex 11 s.7.2)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fillfinish.quality.backup import BackupError, backup, restore
from fillfinish.record import RecordStore
from quality_helpers import run_batch


def _target(db_url: str, tmp_path: Path) -> tuple[str, object]:
    """A new, empty restore target of the same backend (and how to drop it)."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored.db'}", None
    name = f"ffrestore_{uuid.uuid4().hex[:10]}"
    admin_url = make_url(db_url).set(query={})
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    target = make_url(db_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return target, drop


def test_backup_while_a_batch_runs_then_restore_and_verify(store: RecordStore, db_url: str, tmp_path: Path) -> None:
    """A writer keeps appending to a running batch during the backup; the copy is consistent and verifies."""
    done = run_batch(store)
    running = store.create_batch(**{k: getattr(store.batch(done), k) for k in (
        "product", "product_code", "recipe_name", "recipe_version", "recipe_hash", "recipe_snapshot", "lot",
        "planned_vials", "operator", "mode", "site_config")})
    started, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            n = 0
            while not stop.is_set() or n < 20:
                store.append(running, "measurement", {"signal": "particles", "seq": n}, "monitor")
                n += 1
                if n == 20:
                    started.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            started.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert started.wait(60), "the writer did not start"
    file = tmp_path / "record.backup"
    try:
        backup(db_url, file)
    finally:
        stop.set()
        thread.join(60)
    assert not errors, errors
    target, drop = _target(db_url, tmp_path)
    try:
        report = restore(file, target)
        assert report.ok, report.lines()
        copy = RecordStore(target, create=False)
        try:
            assert len(copy.entries(done)) == len(store.entries(done))
            assert 20 <= len(copy.entries(running)) <= len(store.entries(running))
        finally:
            copy.close()
        with pytest.raises(BackupError, match="exists"):
            backup(db_url, file)
        if target.startswith("sqlite"):
            with pytest.raises(BackupError, match="new file only"):
                restore(file, target)
    finally:
        if drop is not None:
            drop()  # type: ignore[operator]
