"""RecordStore: the append-only, hash-chained batch record on SQLite (embedded) or PostgreSQL (site database).

Every write is one transaction that computes the next seq and prev_hash from the last committed entry, inserts the
entry and its ledger row, and commits before `append` returns: the record is written as things happen, and a failure
raises RecordWriteError so the controller can go to a safe state. There is no update or delete API; the database
refuses UPDATE/DELETE by triggers installed by the migration (docs/record.md).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, func, insert, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from fillfinish.record.chain import (
    GENESIS_LEDGER_HASH,
    CanonicalJSONError,
    canonical_json,
    entry_hash,
    format_ts,
    header_hash,
    ledger_hash,
    normalise,
    parse_ts,
)
from fillfinish.record.models import MODES, REGISTRY_MODE, BatchHeader, BatchRow, Entry, EntryRow, LedgerRow

if TYPE_CHECKING:
    from fillfinish.record.verify import VerifyReport

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""Alembic script location inside the installed package (no alembic.ini needed)."""

PG_WRITE_LOCK = 0x66696C6C  # "fill": advisory lock key serialising record writers on PostgreSQL
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
REGISTRY_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,27}$")
SUPPORTED = "sqlite:///path/to/fillfinish.db or postgresql+psycopg://user@host:5432/dbname"

BATCH = BatchRow.__table__
ENTRY = EntryRow.__table__
LEDGER = LedgerRow.__table__


class RecordError(Exception):
    """Base of all batch record errors."""


class RecordOpenError(RecordError):
    """The record database could not be opened (bad URL, missing file, unreachable server, unknown schema)."""


class RecordWriteError(RecordError):
    """A record write failed; nothing of it was committed. The message names the batch, kind and cause."""


class UnknownBatchError(RecordError):
    """No batch with this id in the record."""


def safe_url(url: str | URL) -> str:
    """The URL as text with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return str(url)


def migrate(connection: Connection) -> None:
    """Run the record's Alembic migrations to head on `connection` (programmatic config, no ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def _utc_now() -> datetime:
    """Wall-clock UTC now (the default record clock)."""
    return datetime.now(UTC)


def _header_from_row(row: Any) -> BatchHeader:
    """A batch table row as a BatchHeader dataclass."""
    try:
        site_config = json.loads(row.site_config)
        created = parse_ts(row.created_at)
    except ValueError as exc:
        raise RecordError(f"batch {row.batch_id}: header is not readable ({exc}); run `fillfinish record verify`") from exc
    return BatchHeader(
        batch_id=row.batch_id,
        created_at=created,
        product=row.product,
        product_code=row.product_code,
        recipe_name=row.recipe_name,
        recipe_version=row.recipe_version,
        recipe_hash=row.recipe_hash,
        recipe_snapshot=row.recipe_snapshot,
        lot=row.lot,
        planned_vials=row.planned_vials,
        operator=row.operator,
        mode=row.mode,
        site_config=site_config,
        header_hash=row.header_hash,
    )


def _entry_from_row(row: Any) -> Entry:
    """An entry table row as an Entry dataclass."""
    try:
        data = json.loads(row.data)
        ts = parse_ts(row.ts)
    except ValueError as exc:
        raise RecordError(
            f"batch {row.batch_id} entry {row.seq}: not readable ({exc}); run `fillfinish record verify`"
        ) from exc
    return Entry(
        batch_id=row.batch_id,
        seq=row.seq,
        global_seq=row.global_seq,
        ts=ts,
        kind=row.kind,
        actor=row.actor,
        data=data,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _text_field(name: str, value: object) -> str:
    """`value` if it is a non-empty string, else a ValueError naming the field."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


class RecordStore:
    """The batch record: create batches, append hash-chained entries, read them back; nothing is ever changed."""

    def __init__(
        self,
        url: str,
        *,
        now: Callable[[], datetime | float] | None = None,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        """Open (and with `create`, create) the record at `url` and migrate it to head.

        `read_only`: inspect only (verify, show, export, review): SQLite opened with mode=ro (works on a read-only
        file, never creates, migrates or changes the journal mode), PostgreSQL in read-only transactions.

        `now` gives entry timestamps (aware datetime, or Unix seconds such as `Clock.now()`); default UTC wall time.
        With `create=False` a missing SQLite file or an empty database is an error instead of a new record.
        Raises RecordOpenError with a clear message on any failure.
        """
        self._now = now or _utc_now
        self._lock = threading.RLock()
        self._closed = False
        self._url = safe_url(url)
        self.read_only = read_only
        if read_only:
            self._engine = self._make_read_only_engine(url)
            return
        self._engine = self._make_engine(url, create)
        try:
            with self._write() as conn:
                if not create and not inspect(conn).has_table("batch"):
                    raise RecordOpenError(f"no batch record in {self._url} (the database has no record tables)")
                migrate(conn)
        except RecordOpenError:
            self._engine.dispose()
            raise
        except Exception as exc:  # any driver/alembic failure on open becomes one clear error
            self._engine.dispose()
            raise RecordOpenError(f"cannot open batch record {self._url}: {_cause(exc)}") from exc

    # ----------------------------------------------------------------------------------------------- engine, txns
    def _make_engine(self, url: str, create: bool) -> Engine:
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
                    raise RecordOpenError(f"database file not found: {path} (from {self._url})")
                if not path.parent.is_dir():
                    raise RecordOpenError(f"folder of the database file does not exist: {path.parent}")
        elif backend != "postgresql":
            raise RecordOpenError(f"unsupported database {backend!r} in {self._url}; expected {SUPPORTED}")
        try:
            engine = create_engine(parsed, **kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError, TypeError) as exc:
            raise RecordOpenError(f"cannot use database URL {self._url}: {_cause(exc)}") from exc
        if backend == "sqlite":
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _make_read_only_engine(self, url: str) -> Engine:
        """An engine that cannot write (fillfinish/record/readonly.py), checked to hold a fillfinish record."""
        from fillfinish.record.readonly import open_read_only

        return open_read_only(url, self._url)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for verify and tests; never write through it)."""
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self._url

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._engine.dialect.name

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction, serialised against other writers (thread lock + BEGIN IMMEDIATE / advisory lock)."""
        if getattr(self, "read_only", False):
            raise RecordWriteError(f"the batch record {self._url} is open read-only")
        with self._lock, self._engine.connect() as conn:
            conn.execution_options(fillfinish_write=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_WRITE_LOCK})
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """One read transaction (a consistent snapshot)."""
        if self._closed:
            raise RecordError("the record store is closed")
        with self._lock, self._engine.connect() as conn, conn.begin():
            yield conn

    def _timestamp(self) -> datetime:
        """The current record time from the injected clock, as an aware UTC datetime."""
        moment = self._now()
        if isinstance(moment, (int, float)) and not isinstance(moment, bool):
            return datetime.fromtimestamp(float(moment), UTC)
        if not isinstance(moment, datetime):
            raise ValueError(f"the record clock returned {moment!r}; expected a datetime or Unix seconds")
        return moment

    # ----------------------------------------------------------------------------------------------- writes
    def create_batch(
        self,
        *,
        product: str,
        product_code: str,
        recipe_name: str,
        recipe_version: str,
        recipe_hash: str,
        recipe_snapshot: str,
        lot: str,
        planned_vials: int,
        operator: str,
        mode: str,
        site_config: Mapping[str, Any],
    ) -> str:
        """Create a batch header (id B-YYYYMMDD-NNNN from the record clock's UTC date), commit it and return its id."""
        try:
            fields: dict[str, Any] = {
                name: _text_field(name, value)
                for name, value in (
                    ("product", product),
                    ("product_code", product_code),
                    ("recipe_name", recipe_name),
                    ("recipe_version", recipe_version),
                    ("recipe_hash", recipe_hash),
                    ("recipe_snapshot", recipe_snapshot),
                    ("lot", lot),
                    ("operator", operator),
                )
            }
            if isinstance(planned_vials, bool) or not isinstance(planned_vials, int) or planned_vials < 1:
                raise ValueError(f"planned_vials must be an integer >= 1, got {planned_vials!r}")
            if mode not in MODES or mode == REGISTRY_MODE:
                batch_modes = ", ".join(m for m in MODES if m != REGISTRY_MODE)
                raise ValueError(f"mode must be one of {batch_modes}, got {mode!r}")
            if not isinstance(site_config, Mapping):
                raise ValueError(f"site_config must be a mapping, got {type(site_config).__name__}")
            config = normalise(site_config, "site_config")
            fields.update(planned_vials=planned_vials, mode=mode, site_config=config)
        except (ValueError, TypeError) as exc:
            raise RecordWriteError(f"cannot create batch: {exc}") from exc
        with self._lock:
            self._check_open("create a batch")
            try:
                created = self._timestamp()
                created_text = format_ts(created)
                prefix = f"B-{created.astimezone(UTC):%Y%m%d}-"
                with self._write() as conn:
                    last = conn.execute(
                        select(func.max(BATCH.c.batch_id)).where(BATCH.c.batch_id.like(prefix + "%"))
                    ).scalar()
                    number = int(last[len(prefix) :]) + 1 if last else 1
                    batch_id = f"{prefix}{number:04d}"
                    fields.update(batch_id=batch_id, created_at=created_text)
                    hhash = header_hash(fields)
                    row = dict(fields, site_config=canonical_json(config), header_hash=hhash)
                    conn.execute(insert(BATCH).values(**row))
                    self._ledger_append(conn, batch_id, 0, hhash)
            except RecordError:
                raise
            except Exception as exc:
                raise RecordWriteError(f"cannot create batch in {self._url}: {_cause(exc)}") from exc
        return batch_id

    def append(self, batch_id: str, kind: str, data: Mapping[str, Any], actor: str) -> Entry:
        """Append one entry to `batch_id`, hash-chained to the last one, and commit it before returning it.

        Raises RecordWriteError (nothing written) for an unknown batch, a bad kind/actor, data that is not plain
        JSON, a closed store, or any database failure.
        """
        try:
            if not isinstance(kind, str) or not KIND_RE.match(kind):
                raise ValueError(f"kind must be lowercase letters, digits and _ (e.g. 'vial'), got {kind!r}")
            _text_field("actor", actor)
            if not isinstance(data, Mapping):
                raise ValueError(f"data must be a mapping (JSON object), got {type(data).__name__}")
            payload: dict[str, Any] = normalise(data)
            data_text = canonical_json(payload)
        except (CanonicalJSONError, ValueError, TypeError) as exc:
            raise RecordWriteError(f"cannot record {kind!r} entry for batch {batch_id}: {exc}") from exc
        with self._lock:
            self._check_open(f"record {kind!r} entry for batch {batch_id}")
            try:
                ts = format_ts(self._timestamp())
                with self._write() as conn:
                    head = conn.execute(select(BATCH.c.header_hash).where(BATCH.c.batch_id == batch_id)).first()
                    if head is None:
                        raise RecordWriteError(f"cannot record {kind!r} entry: unknown batch {batch_id!r}")
                    last = conn.execute(
                        select(ENTRY.c.seq, ENTRY.c.hash)
                        .where(ENTRY.c.batch_id == batch_id)
                        .order_by(ENTRY.c.seq.desc())
                        .limit(1)
                    ).first()
                    seq, prev = (last.seq + 1, last.hash) if last else (1, head.header_hash)
                    digest = entry_hash(prev, batch_id=batch_id, seq=seq, ts=ts, kind=kind, actor=actor, data=payload)
                    global_seq = self._ledger_append(conn, batch_id, seq, digest)
                    conn.execute(
                        insert(ENTRY).values(
                            batch_id=batch_id,
                            seq=seq,
                            global_seq=global_seq,
                            ts=ts,
                            kind=kind,
                            actor=actor,
                            data=data_text,
                            prev_hash=prev,
                            hash=digest,
                        )
                    )
            except RecordError:
                raise
            except Exception as exc:
                raise RecordWriteError(
                    f"cannot record {kind!r} entry for batch {batch_id} in {self._url}: {_cause(exc)}"
                ) from exc
        return Entry(
            batch_id=batch_id,
            seq=seq,
            global_seq=global_seq,
            ts=parse_ts(ts),
            kind=kind,
            actor=actor,
            data=json.loads(data_text),
            prev_hash=prev,
            hash=digest,
        )

    @staticmethod
    def _ledger_append(conn: Connection, batch_id: str, seq: int, record_hash: str) -> int:
        """Insert the next ledger row for a header (seq 0) or entry; return its global_seq."""
        last = conn.execute(
            select(LEDGER.c.global_seq, LEDGER.c.hash).order_by(LEDGER.c.global_seq.desc()).limit(1)
        ).first()
        global_seq, prev = (last.global_seq + 1, last.hash) if last else (1, GENESIS_LEDGER_HASH)
        digest = ledger_hash(prev, global_seq=global_seq, batch_id=batch_id, seq=seq, record_hash=record_hash)
        conn.execute(
            insert(LEDGER).values(
                global_seq=global_seq, batch_id=batch_id, seq=seq, record_hash=record_hash, prev_hash=prev, hash=digest
            )
        )
        return int(global_seq)

    def _check_open(self, what: str) -> None:
        """Raise RecordWriteError when the store was closed."""
        if self._closed:
            raise RecordWriteError(f"cannot {what}: the record store is closed")

    # ----------------------------------------------------------------------------------------------- reads
    def batch(self, batch_id: str) -> BatchHeader:
        """The header of `batch_id`; UnknownBatchError when there is none."""
        with self._read() as conn:
            row = conn.execute(select(BATCH).where(BATCH.c.batch_id == batch_id)).first()
        if row is None:
            raise UnknownBatchError(f"unknown batch {batch_id!r} in {self._url}")
        return _header_from_row(row)

    def batches(self, *, include_registries: bool = False) -> list[BatchHeader]:
        """All batch headers, oldest first; registry chains (mode `registry`) only with `include_registries`."""
        query = select(BATCH)
        if not include_registries:
            query = query.where(BATCH.c.mode != REGISTRY_MODE)
        with self._read() as conn:
            rows = conn.execute(query.order_by(BATCH.c.created_at, BATCH.c.batch_id)).all()
        return [_header_from_row(row) for row in rows]

    def create_registry(self, name: str, *, site_config: Mapping[str, Any] | None = None) -> str:
        """Create (once) the header of registry chain `name` (id REG-NAME) and return its id; idempotent.

        A registry is an append-only, hash-chained audit trail of master data (recipes, users, materials, ...) kept
        in the same tables, ledger and `verify` as the batches; see fillfinish.record.registry.
        """
        if not REGISTRY_NAME_RE.match(name):
            raise RecordWriteError(f"registry name must match {REGISTRY_NAME_RE.pattern}, got {name!r}")
        batch_id = f"REG-{name.upper()}"
        with self._lock:
            self._check_open("create a registry")
            try:
                with self._write() as conn:
                    if conn.execute(select(BATCH.c.batch_id).where(BATCH.c.batch_id == batch_id)).first():
                        return batch_id
                    config = normalise(dict(site_config or {}), "site_config")
                    fields: dict[str, Any] = {
                        "product": f"registry {name}",
                        "product_code": "-",
                        "recipe_name": "-",
                        "recipe_version": "-",
                        "recipe_hash": "-",
                        "recipe_snapshot": "-",
                        "lot": "-",
                        "planned_vials": 1,
                        "operator": "system",
                        "mode": REGISTRY_MODE,
                        "site_config": config,
                        "batch_id": batch_id,
                        "created_at": format_ts(self._timestamp()),
                    }
                    hhash = header_hash(fields)
                    conn.execute(insert(BATCH).values(**dict(fields, site_config=canonical_json(config), header_hash=hhash)))
                    self._ledger_append(conn, batch_id, 0, hhash)
            except RecordError:
                raise
            except Exception as exc:
                raise RecordWriteError(f"cannot create registry {name} in {self._url}: {_cause(exc)}") from exc
        return batch_id

    def entries(self, batch_id: str, kinds: Iterable[str] | None = None) -> list[Entry]:
        """The entries of `batch_id` in seq order, optionally only those whose kind is in `kinds`."""
        wanted = None if kinds is None else ([kinds] if isinstance(kinds, str) else list(kinds))
        with self._read() as conn:
            if conn.execute(select(BATCH.c.batch_id).where(BATCH.c.batch_id == batch_id)).first() is None:
                raise UnknownBatchError(f"unknown batch {batch_id!r} in {self._url}")
            query = select(ENTRY).where(ENTRY.c.batch_id == batch_id)
            if wanted is not None:
                query = query.where(ENTRY.c.kind.in_(wanted))
            rows = conn.execute(query.order_by(ENTRY.c.seq, ENTRY.c.id)).all()
        return [_entry_from_row(row) for row in rows]

    def last_entry(self, batch_id: str) -> Entry | None:
        """The entry with the highest seq of `batch_id`, or None when it has none yet."""
        with self._read() as conn:
            if conn.execute(select(BATCH.c.batch_id).where(BATCH.c.batch_id == batch_id)).first() is None:
                raise UnknownBatchError(f"unknown batch {batch_id!r} in {self._url}")
            row = conn.execute(
                select(ENTRY).where(ENTRY.c.batch_id == batch_id).order_by(ENTRY.c.seq.desc()).limit(1)
            ).first()
        return None if row is None else _entry_from_row(row)

    def verify(self, batch_id: str | None = None, *, anchor: tuple[int, str] | None = None) -> VerifyReport:
        """Check the hash chains (see verify.verify)."""
        from fillfinish.record.verify import verify

        return verify(self, batch_id, anchor=anchor)

    def close(self) -> None:
        """Release the database connections; later writes raise RecordWriteError."""
        with self._lock:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> RecordStore:
        """Use as a context manager that closes the store."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close on leaving the with block."""
        self.close()


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


def _cause(exc: BaseException) -> str:
    """A one-line cause for messages: the DBAPI error text when there is one, without SQLAlchemy's long tail."""
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        if orig is not None:
            return f"{type(orig).__name__}: {str(orig).strip().splitlines()[0] if str(orig).strip() else ''}"
        return str(exc).splitlines()[0]
    text_ = str(exc).strip()
    return f"{type(exc).__name__}: {text_.splitlines()[0] if text_ else ''}"
