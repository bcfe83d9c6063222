"""Opening the record's database: engines for SQLite (WAL, synchronous=FULL) and PostgreSQL, migrations, and the
driver errors the write path tells apart (a unique-key conflict, a lost connection)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from fillfinish.record.errors import RecordOpenError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""Alembic script location inside the installed package (no alembic.ini needed)."""
SUPPORTED = "sqlite:///path/to/fillfinish.db or postgresql+psycopg://user@host:5432/dbname"


def safe_url(url: str | URL) -> str:
    """The URL as text with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return str(url)


def migrate(connection: Connection) -> None:
    """Run the record's Alembic migrations to head on `connection` (programmatic config, no ini file)."""
    from alembic import command  # imported here: read-only commands (verify, show) never load alembic
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def make_engine(url: str, create: bool, shown: str) -> Engine:
    """Build the engine for a supported URL; SQLite gets WAL, synchronous=FULL, foreign keys and busy timeout."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise RecordOpenError(f"not a database URL: {url!r}; expected {SUPPORTED}") from exc
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        elif not database.startswith("file:"):
            path = Path(database)
            if not create and not path.is_file():
                raise RecordOpenError(f"database file not found: {path} (from {shown})")
            if not path.parent.is_dir():
                raise RecordOpenError(f"folder of the database file does not exist: {path.parent}")
    elif backend != "postgresql":
        raise RecordOpenError(f"unsupported database {backend!r} in {shown}; expected {SUPPORTED}")
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError, TypeError) as exc:
        raise RecordOpenError(f"cannot use database URL {shown}: {cause(exc)}") from exc
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """Per SQLite connection: manual transactions, WAL, synchronous=FULL, foreign keys, 10 s busy timeout."""
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_on_begin)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Start SQLite transactions ourselves: writers take the write lock at once (BEGIN IMMEDIATE)."""
    if conn.get_execution_options().get("fillfinish_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def is_conflict(exc: BaseException) -> bool:
    """True for a unique-key violation: another writer appended the same seq first (retry with fresh heads)."""
    import sqlite3

    if isinstance(exc, sqlite3.IntegrityError):  # a unique key, or migration 0004's guard against a taken key
        return "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc) or "insert over an existing" in str(exc)
    try:
        import psycopg.errors

        return isinstance(exc, psycopg.errors.UniqueViolation)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False


def is_disconnect(exc: BaseException) -> bool:
    """True when the write connection itself failed (reconnect on the next write)."""
    import sqlite3

    if isinstance(exc, sqlite3.ProgrammingError):
        return True
    try:
        import psycopg

        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    except ImportError:  # pragma: no cover
        return False


def cause(exc: BaseException) -> str:
    """A one-line cause for messages: the DBAPI error text when there is one, without SQLAlchemy's long tail."""
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        if orig is not None:
            return f"{type(orig).__name__}: {str(orig).strip().splitlines()[0] if str(orig).strip() else ''}"
        return str(exc).splitlines()[0]
    text_ = str(exc).strip()
    return f"{type(exc).__name__}: {text_.splitlines()[0] if text_ else ''}"
