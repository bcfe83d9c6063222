"""RecordStore: the append-only, hash-chained batch record on SQLite (embedded) or PostgreSQL (site database).

Every write is one transaction that computes the next seq and prev_hash from the last committed entry, inserts the
entry and its ledger row, and commits before `append` returns: the record is written as things happen, and a failure
raises RecordWriteError so the controller can go to a safe state. There is no update or delete API; the database
refuses UPDATE/DELETE by triggers installed by the migration (docs/record.md).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError

from fillfinish.record.chain import format_ts, normalise
from fillfinish.record.entry_check import KIND_RE, CheckedEntry, check_entry
from fillfinish.record.entry_check import text_field as _text_field
from fillfinish.record.connect import MIGRATIONS_DIR, SUPPORTED, make_engine, migrate, safe_url
from fillfinish.record.connect import cause as _cause
from fillfinish.record.errors import RecordError, RecordOpenError, RecordWriteError, UnknownBatchError
from fillfinish.record.models import MODES, REGISTRY_MODE, Entry
from fillfinish.record.names import LINE_ID_RE, check_actor
from fillfinish.record.sitekey import (KEY_ENV, SiteKey, SiteKeyError, ephemeral_key, load_or_create, read_key,
                                       resolve_key_path)
from fillfinish.record.store_reads import BATCH, ENTRY, StoreReads
from fillfinish.record.verify import VerifyReport, verify
from fillfinish.record.witness import Witness
from fillfinish.record.write_path import MAX_WRITE_ATTEMPTS, WritePath

__all__ = ["DEFAULT_LINE_ID", "MAX_WRITE_ATTEMPTS", "MIGRATIONS_DIR", "PG_WRITE_LOCK", "SUPPORTED", "RecordError",
           "RecordOpenError", "RecordStore", "RecordWriteError", "UnknownBatchError", "migrate", "safe_url"]

PG_WRITE_LOCK = 0x66696C6C  # "fill": advisory lock key serialising record writers on PostgreSQL
REGISTRY_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,27}$")
DEFAULT_LINE_ID = "line-1"
"""The line whose ledger chain a store appends to when the site config names none."""


def _utc_now() -> datetime:
    """Wall-clock UTC now (the default record clock)."""
    return datetime.now(UTC)


class RecordStore(StoreReads, WritePath):
    """The batch record: create batches, append hash-chained entries, read them back; nothing is ever changed."""

    def __init__(
        self,
        url: str,
        *,
        now: Callable[[], datetime | float] | None = None,
        create: bool = True,
        key: SiteKey | str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        line_id: str = DEFAULT_LINE_ID,
        read_only: bool = False,
    ) -> None:
        """Open (and with `create`, create) the record at `url` and migrate it to head.

        `read_only`: inspect only (verify, show, export, review): SQLite opened with mode=ro (works on a read-only
        file, never creates, migrates or changes the journal mode), PostgreSQL in read-only transactions.

        `now` gives entry timestamps (aware datetime, or Unix seconds such as `Clock.now()`); default UTC wall time.
        With `create=False` a missing SQLite file or an empty database is an error instead of a new record.
        `key` is the site key (a SiteKey or a key file path, e.g. from `--key`); else $FILLFINISH_SITE_KEY, else
        `key_file` (the site config's `[record] key_file`), else the default path (fillfinish.record.sitekey).
        `line_id` names the line whose ledger chain this store appends to (site config `[record] line_id`).
        Raises RecordOpenError with a clear message on any failure.
        """
        self._now = now or _utc_now
        self._lock = threading.RLock()
        self._closed = False
        self._url = safe_url(url)
        self._raw_url = str(url) if not isinstance(url, URL) else url.render_as_string(hide_password=False)
        if not isinstance(line_id, str) or not LINE_ID_RE.fullmatch(line_id):
            raise RecordOpenError(f"line id {line_id!r} is not allowed; use 1-32 letters, digits, '.', '_' or '-'")
        self.line_id = line_id
        self._key: SiteKey | None = key if isinstance(key, SiteKey) else None
        self._key_path: Path | None = None
        self._key_must_exist = False
        self._raw: Any = None  # the DB-API connection of the write path (opened at the first write)
        self._line_head: tuple[int, str] | None = None  # (line_seq, hash) of this line's newest ledger row
        self._batch_heads: dict[str, tuple[int, str]] = {}  # batch_id -> (seq, hash) of its newest entry/header
        self._witness: Witness | None = None
        self.read_only = read_only
        self._find_key(key, key_file)  # found (never created) before anything opens: read-only commands verify too
        if read_only:
            self._engine = self._make_read_only_engine(url)
            return
        self._engine = self._make_engine(url, create)
        self._open_and_migrate(create)

    def _find_key(self, key: SiteKey | str | os.PathLike[str] | None, key_file: str | os.PathLike[str] | None) -> None:
        """Locate the site key (given, $FILLFINISH_SITE_KEY, `key_file` or the default path); RecordOpenError if not."""
        try:
            if self._key is None:
                self._key_path = resolve_key_path(self._raw_url, key, key_file)
                # a key file named by the site config is shared by every line: never create a second, different one
                self._key_must_exist = key is None and not os.environ.get(KEY_ENV) and key_file is not None
                if self._key_path is None:
                    self._key = ephemeral_key()
            else:
                self._key_path = self._key.path
        except (ArgumentError, ValueError) as exc:
            raise RecordOpenError(f"cannot find the site key for {self._url}: {exc}") from exc

    def _open_and_migrate(self, create: bool) -> None:
        """Check the database holds a record (unless `create`) and migrate it to head; one clear RecordOpenError."""
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
        """Build the engine for a supported URL (fillfinish.record.connect.make_engine)."""
        return make_engine(url, create, self._url)

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
            check_actor(operator, "operator")
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
                prefix = f"B-{created.astimezone(UTC):%Y%m%d}-"
                fields.update(created_at=format_ts(created))
                batch_id = self._insert_header(fields, prefix)
            except RecordError:
                raise
            except Exception as exc:
                raise RecordWriteError(f"cannot create batch in {self._url}: {_cause(exc)}") from exc
        return batch_id

    def append(self, batch_id: str, kind: str, data: Mapping[str, Any], actor: str, *, durable: bool = True) -> Entry:
        """Append one entry to `batch_id`, hash-chained to the last one, and commit it before returning it.

        `durable=False` (SQLite; decision 0019): committed but not synced; the caller's next durable append syncs it
        with its own commit (the WAL replays a prefix of commits, never a later one without an earlier one).

        One transaction (on PostgreSQL one statement) inserts the entry and its keyed ledger row; the chain heads come
        from memory and a unique-key conflict (another writer appended first) re-reads them and retries.
        Raises RecordWriteError (nothing written) for an unknown batch, a bad kind/actor, data that is not plain
        JSON, a closed store, a missing site key, or any database failure.
        """
        return self.append_checked(batch_id, check_entry(batch_id, kind, data, actor), durable=durable)

    def append_checked(self, batch_id: str, checked: CheckedEntry, *, durable: bool = True) -> Entry:
        """`append` of an entry `check_entry` has already checked (the batch recorder checks at its caller, then
        appends on its writer thread): the same transaction and errors, without checking the entry twice."""
        kind, actor, payload, data_text = checked.kind, checked.actor, checked.payload, checked.data_text
        with self._lock:
            self._check_open(f"record {kind!r} entry for batch {batch_id}")
            try:
                self._sync_commits(durable)
                moment = self._timestamp()
                ts = format_ts(moment)
                seq, global_seq, prev, digest = self._with_retry(
                    f"record {kind!r} entry for batch {batch_id}",
                    lambda driver: self._append_once(driver, batch_id, kind, actor, data_text, ts))
            except UnknownBatchError as exc:
                raise RecordWriteError(f"cannot record {kind!r} entry: unknown batch {batch_id!r}") from exc
            except RecordError:
                raise
            except SiteKeyError as exc:
                raise RecordWriteError(f"cannot record {kind!r} entry for batch {batch_id}: {exc}") from exc
            except Exception as exc:
                raise RecordWriteError(
                    f"cannot record {kind!r} entry for batch {batch_id} in {self._url}: {_cause(exc)}"
                ) from exc
        return Entry(
            batch_id=batch_id,
            seq=seq,
            global_seq=global_seq,
            ts=moment.astimezone(UTC),  # the same instant as the stored text (microseconds), without re-parsing
            kind=kind,
            actor=actor,
            data=payload,
            prev_hash=prev,
            hash=digest,
        )

    # ----------------------------------------------------------------------------------------------- site key
    @property
    def key_path(self) -> Path | None:
        """The site key file this store uses (None for an ephemeral in-memory key)."""
        return self._key_path

    def site_key(self, *, create: bool = False) -> SiteKey | None:
        """The site key, read from its file (created there on first use when `create`); None when it is missing and
        not to be created. Raises SiteKeyError for a key file that exists but cannot be read."""
        if self._key is None and self._key_path is not None:
            if create and self._key_must_exist and not self._key_path.exists():
                raise SiteKeyError(f"site key file not found: {self._key_path} (named by the site config's [record] "
                                   "key_file; create it once with `fillfinish site init --key FILE` and copy it to "
                                   "every line that shares this database)")
            if create:
                self._key = load_or_create(self._key_path)
            elif self._key_path.exists():
                self._key = read_key(self._key_path)
        return self._key

    def record_time(self) -> datetime:
        """The current record time (the store's injected clock) as an aware UTC datetime."""
        return self._timestamp()

    # ----------------------------------------------------------------------------------------------- reads
    def create_registry(self, name: str, *, site_config: Mapping[str, Any] | None = None) -> str:
        """Create (once) the header of registry chain `name` (id REG-NAME) and return its id; idempotent.

        A registry is an append-only, hash-chained audit trail of master data (recipes, users, materials, ...) kept
        in the same tables, ledger and `verify` as the batches; see fillfinish.record.registry.
        """
        if not REGISTRY_NAME_RE.fullmatch(name):
            raise RecordWriteError(f"registry name must match {REGISTRY_NAME_RE.pattern}, got {name!r}")
        batch_id = f"REG-{name.upper()}"
        with self._lock:
            self._check_open("create a registry")
            try:
                with self._read() as conn:
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
                try:
                    self._insert_header(fields, None)
                except RecordWriteError:
                    with self._read() as conn:  # created by another writer at the same moment
                        if conn.execute(select(BATCH.c.batch_id).where(BATCH.c.batch_id == batch_id)).first():
                            return batch_id
                    raise
            except RecordError:
                raise
            except Exception as exc:
                raise RecordWriteError(f"cannot create registry {name} in {self._url}: {_cause(exc)}") from exc
        return batch_id

    def verify(self, batch_id: str | None = None, *, anchor: tuple[int, str] | None = None, jobs: int = 1
               ) -> VerifyReport:
        """Check the hash chains, ledgers, MACs and signatures (see verify.verify)."""
        return verify(self, batch_id, anchor=anchor, jobs=jobs)

    def close(self) -> None:
        """Release the database connections; later writes raise RecordWriteError."""
        with self._lock:
            self._closed = True
            if self._raw is not None:
                try:
                    self._raw.close()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass
                self._raw = None
            if self._witness is not None:
                self._witness.close()
                self._witness = None
            self._engine.dispose()

    def __enter__(self) -> RecordStore:
        """Use as a context manager that closes the store."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close on leaving the with block."""
        self.close()
