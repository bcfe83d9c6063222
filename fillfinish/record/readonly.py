"""Opening a batch record for inspection only: nothing in the database or its folder may change.

SQLite: the file is opened through a `file:...?mode=ro` URI (never creates the database, runs no migration, leaves
the journal mode alone; `PRAGMA query_only` as a second guard); a file that is not writable (chmod 444, a read-only
mount) is opened `immutable`, so not even a WAL index file is created beside it. PostgreSQL: every transaction is
READ ONLY. A file that is not a fillfinish record (not SQLite, or without the record's tables) is reported as such.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

RECORD_TABLES = {"batch", "entry"}


def _error(message: str) -> Exception:
    """A RecordOpenError (imported late: store.py imports this module)."""
    from fillfinish.record.store import RecordOpenError

    return RecordOpenError(message)


def open_read_only(url: str, shown: str) -> Engine:
    """A read-only engine on the record at `url` (`shown`: the URL without password, for messages)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise _error(f"not a database URL: {shown!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed.database or "", shown)
    elif backend == "postgresql":
        try:
            engine = create_engine(parsed, execution_options={"postgresql_readonly": True})
        except (ArgumentError, NoSuchModuleError, ImportError, TypeError) as exc:
            raise _error(f"cannot use database URL {shown}: {exc}") from exc
    else:
        raise _error(f"unsupported database {backend!r} in {shown}")
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except SQLAlchemyError as exc:
        engine.dispose()
        orig = getattr(exc, "orig", exc)
        if isinstance(orig, sqlite3.DatabaseError) and "not a database" in str(orig):
            raise _error(f"{shown} is not a fillfinish batch record (not an SQLite database)") from exc
        raise _error(f"cannot open batch record {shown}: {str(orig).splitlines()[0] if str(orig) else exc}") from exc
    if not RECORD_TABLES <= tables:
        engine.dispose()
        raise _error(f"no batch record in {shown} (the database has no record tables: not a fillfinish record)")
    return engine


def _sqlite_engine(database: str, shown: str) -> Engine:
    """SQLite through a read-only URI; the file must exist (nothing is created)."""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise _error(f"{shown}: a read-only open needs an SQLite file path")
    path = Path(database).resolve()
    if not path.is_file():
        raise _error(f"database file not found: {path} (from {shown})")
    uri = f"file:{quote(str(path))}?mode=ro"
    if not os.access(path, os.W_OK) or not os.stat(path).st_mode & 0o222:  # nobody writes a read-only file: no WAL index (-shm) is needed or left behind
        uri += "&immutable=1"

    def connect() -> sqlite3.Connection:
        """One read-only connection through the URI."""
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect)
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
    return engine


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Manual transactions, a busy timeout and query_only; no journal-mode change (that would be a write)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()
