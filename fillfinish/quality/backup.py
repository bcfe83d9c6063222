"""Backup and restore of the whole record database (EU GMP Annex 11 s.7.2: backups whose restore is tested).

SQLite: the online backup API copies a consistent snapshot while batches keep writing (WAL readers never block the
writer). PostgreSQL: pg_dump in custom format (a consistent snapshot by MVCC), restored with pg_restore. A restore goes
only into a new, empty target and is followed by `verify` of the restored record, whose result is returned.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from fillfinish.record.store import RecordError, RecordStore
from fillfinish.record.verify import VerifyReport

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(RecordError):
    """A backup or restore was refused or failed; the message says why."""


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another backend)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite record cannot be backed up")
    return Path(parsed.database)


def _libpq(url: str) -> tuple[str, str | None]:
    """(libpq URI for pg_dump/pg_restore, schema named by a search_path option or None)."""
    parsed = make_url(url)
    options = str(parsed.query.get("options", ""))
    schema = options.split("search_path=", 1)[1].split()[0].split(",")[0] if "search_path=" in options else None
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False), schema


def _tool(name: str) -> str:
    """Path of a PostgreSQL client tool, or BackupError."""
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found on PATH; install the PostgreSQL client tools to back up or restore a "
                          "PostgreSQL record")
    return path


def backup(url: str, target: Path) -> Path:
    """Write a consistent copy of the record at `url` to `target` (refused when `target` exists)."""
    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} exists; a backup never overwrites a file: name a new one")
    if not target.parent.is_dir():
        raise BackupError(f"folder {target.parent} does not exist")
    source = _sqlite_path(url)
    if source is not None:
        if not source.is_file():
            raise BackupError(f"database file not found: {source}")
        # reads only; WAL lets the controller keep writing
        _sqlite_copy(sqlite3.connect(source, timeout=30.0), target, f"SQLite backup of {source}")
        return target
    libpq, schema = _libpq(url)
    cmd = [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target), "--dbname", libpq]
    if schema:
        cmd += ["--schema", schema]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return target


def _sqlite_copy(src: sqlite3.Connection, target: Path, what: str) -> None:
    """Copy the open SQLite database `src` into the new file `target` with SQLite's online backup; close both.

    A failed copy leaves no partial file behind (a half-written backup must never pass for a backup).
    """
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise BackupError(f"{what} failed: {exc}") from exc
    finally:
        dst.close()
        src.close()


def restore(source: Path, url: str) -> VerifyReport:
    """Restore backup file `source` into the new, empty record at `url`, then verify it and return the report."""
    source = Path(source)
    if not source.is_file():
        raise BackupError(f"backup file not found: {source}")
    magic = source.read_bytes()[:16]
    target = _sqlite_path(url)
    if target is not None:
        if not magic.startswith(SQLITE_MAGIC):
            raise BackupError(f"{source} is not a SQLite backup; a PostgreSQL dump restores into a PostgreSQL URL")
        if target.exists():
            raise BackupError(f"{target} exists; a restore goes into a new file only (never over a live record)")
        _sqlite_copy(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True), target,
                     f"SQLite restore from {source}")
    else:
        if not magic.startswith(PGDUMP_MAGIC):
            raise BackupError(f"{source} is not a pg_dump custom-format backup")
        libpq, _schema = _libpq(url)
        done = subprocess.run([_tool("pg_restore"), "--no-owner", "--exit-on-error", "--dbname", libpq, str(source)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    store = RecordStore(url, create=False)
    try:
        return store.verify()
    finally:
        store.close()
