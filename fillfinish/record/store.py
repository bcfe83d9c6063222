"""RecordStore: the append-only, hash-chained batch record on SQLite (embedded) or PostgreSQL (site database).

Every write is one transaction that computes the next seq and prev_hash from the last committed entry, inserts the
entry and its ledger row, and commits before `append` returns: the record is written as things happen, and a failure
raises RecordWriteError so the controller can go to a safe state. There is no update or delete API; the database
refuses UPDATE/DELETE by triggers installed by the migration (docs/record.md).
"""

from __future__ import annotations

import json
import os
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
    entry_hash_text,
    format_ts,
    header_hash,
    line_ledger_hash,
    normalise,
    parse_ts,
)
from fillfinish.record.models import MODES, REGISTRY_MODE, BatchHeader, BatchRow, Entry, EntryRow, LedgerRow
from fillfinish.record.names import LINE_ID_RE, check_actor
from fillfinish.record.vocabulary import validate_entry
from fillfinish.record.sitekey import (
    KEY_ENV,
    SiteKey,
    SiteKeyError,
    ephemeral_key,
    ledger_mac_message,
    load_or_create,
    read_key,
    resolve_key_path,
)
from fillfinish.record.witness import Witness, database_identity

if TYPE_CHECKING:
    from fillfinish.record.verify import VerifyReport

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""Alembic script location inside the installed package (no alembic.ini needed)."""

PG_WRITE_LOCK = 0x66696C6C  # "fill": advisory lock key serialising record writers on PostgreSQL
KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
REGISTRY_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,27}$")
DEFAULT_LINE_ID = "line-1"
"""The line whose ledger chain a store appends to when the site config names none."""
MAX_WRITE_ATTEMPTS = 20
"""Attempts of one write when other writers keep appending first (each conflict re-reads the chain heads)."""
_PG_APPEND = (
    "WITH l AS (INSERT INTO ledger (global_seq, batch_id, seq, record_hash, prev_hash, hash, line_id, line_seq, key_id,"
    " mac) VALUES (nextval('ledger_global_seq'), %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING global_seq) "
    "INSERT INTO entry (batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash) "
    "SELECT %s, %s, l.global_seq, %s, %s, %s, %s, %s, %s FROM l RETURNING global_seq"
)
"""PostgreSQL: an entry and its ledger row in one statement (one round trip, one transaction)."""
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
        try:  # the key is found (never created) before anything opens: read-only commands verify with it too
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

    def append(self, batch_id: str, kind: str, data: Mapping[str, Any], actor: str) -> Entry:
        """Append one entry to `batch_id`, hash-chained to the last one, and commit it before returning it.

        One transaction (on PostgreSQL one statement) inserts the entry and its keyed ledger row; the chain heads come
        from memory and a unique-key conflict (another writer appended first) re-reads them and retries.
        Raises RecordWriteError (nothing written) for an unknown batch, a bad kind/actor, data that is not plain
        JSON, a closed store, a missing site key, or any database failure.
        """
        try:
            if not isinstance(kind, str) or not KIND_RE.fullmatch(kind):
                raise ValueError(f"kind must be lowercase letters, digits and _ (e.g. 'vial'), got {kind!r}")
            check_actor(_text_field("actor", actor))
            if not isinstance(data, Mapping):
                raise ValueError(f"data must be a mapping (JSON object), got {type(data).__name__}")
            payload: dict[str, Any] = normalise(data)
            data_text = canonical_json(payload)
            validate_entry(kind, payload)  # the record vocabulary: an undeclared kind or field is refused (VocabularyError)
        except (CanonicalJSONError, ValueError, TypeError) as exc:
            raise RecordWriteError(f"cannot record {kind!r} entry for batch {batch_id}: {exc}") from exc
        with self._lock:
            self._check_open(f"record {kind!r} entry for batch {batch_id}")
            try:
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

    # ----------------------------------------------------------------------------------------------- write path
    def _connection(self) -> Any:
        """The DB-API connection of the write path, opened on first use; heads are (re)read from the database."""
        if self._raw is None:
            fairy = self._engine.raw_connection()
            driver = fairy.driver_connection
            if self.dialect == "postgresql":
                driver.autocommit = True  # one statement per entry is its own transaction (synchronous commit)
            self._raw = fairy
            self._reload_heads()
            key = self.site_key(create=True)
            if self._witness is None and key is not None and key.path is not None:
                try:
                    from fillfinish.record.witness import witness_path

                    path = witness_path(key.path, database_identity(self._raw_url), self.line_id)
                    self._witness = Witness(path, self.line_id)
                except OSError:
                    self._witness = None  # documented: no witness where the key folder is read-only
        return self._raw.driver_connection

    def _drop_connection(self) -> None:
        """Forget the write connection (after a connection failure); the next write reconnects and re-reads heads."""
        raw, self._raw = self._raw, None
        self._batch_heads.clear()
        self._line_head = None
        if raw is not None:
            try:
                raw.invalidate()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def _reload_heads(self) -> None:
        """Read this line's ledger head from the database and forget cached batch heads (another writer appended)."""
        driver = self._raw.driver_connection
        cur = driver.cursor()
        try:
            cur.execute(self._q("SELECT line_seq, hash FROM ledger WHERE line_id = ? ORDER BY line_seq DESC LIMIT 1"),
                        (self.line_id,))
            row = cur.fetchone()
            if self.dialect == "sqlite" and driver.in_transaction:
                driver.rollback()
        finally:
            cur.close()
        self._line_head = (int(row[0]), str(row[1])) if row else None
        self._batch_heads.clear()

    def _batch_head(self, cur: Any, batch_id: str) -> tuple[int, str]:
        """(seq, hash) of the newest entry of `batch_id` (its header: (0, header_hash)); RecordWriteError if unknown."""
        head = self._batch_heads.get(batch_id)
        if head is not None:
            return head
        cur.execute(self._q("SELECT header_hash FROM batch WHERE batch_id = ?"), (batch_id,))
        row = cur.fetchone()
        if row is None:
            raise UnknownBatchError(f"unknown batch {batch_id!r}")
        cur.execute(self._q("SELECT seq, hash FROM entry WHERE batch_id = ? ORDER BY seq DESC LIMIT 1"), (batch_id,))
        last = cur.fetchone()
        if self.dialect == "sqlite" and self._raw.driver_connection.in_transaction:
            self._raw.driver_connection.rollback()
        head = (int(last[0]), str(last[1])) if last else (0, str(row[0]))
        self._batch_heads[batch_id] = head
        return head

    def _q(self, sql: str) -> str:
        """SQL written with ? placeholders, in the driver's paramstyle."""
        return sql if self.dialect == "sqlite" else sql.replace("?", "%s")

    def _ledger_row(self, batch_id: str, seq: int, record_hash: str) -> tuple[Any, ...]:
        """The next ledger row of this line for (batch_id, seq): (line_seq, prev, hash, key_id, mac)."""
        key = self.site_key(create=True)
        assert key is not None
        line_seq, prev = (self._line_head[0] + 1, self._line_head[1]) if self._line_head else (1, GENESIS_LEDGER_HASH)
        digest = line_ledger_hash(prev, line_id=self.line_id, line_seq=line_seq, batch_id=batch_id, seq=seq,
                                  record_hash=record_hash)
        key_id = key.fingerprint
        mac = key.mac(ledger_mac_message(line_id=self.line_id, line_seq=line_seq, ledger_hash=digest, key_id=key_id))
        return line_seq, prev, digest, key_id, mac

    def _committed(self, batch_id: str, seq: int, record_hash: str, ledger: tuple[Any, ...]) -> None:
        """After a commit: advance the cached heads and the witness."""
        line_seq, _prev, digest, _key_id, mac = ledger
        self._line_head = (line_seq, digest)
        self._batch_heads[batch_id] = (seq, record_hash)
        if self._witness is not None:
            try:
                self._witness.mark(line_seq, digest, mac)
            except OSError:
                self._witness = None

    def _with_retry(self, what: str, attempt: Callable[[Any], Any]) -> Any:
        """Run one write attempt; on a unique-key conflict (another writer appended first) re-read the heads from the
        database and try again; on any other failure raise RecordWriteError (nothing committed)."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                driver = self._connection()
            except (SiteKeyError, RecordError):
                raise
            except Exception as exc:
                self._drop_connection()
                raise RecordWriteError(f"cannot {what} in {self._url}: {_cause(exc)}") from exc
            try:
                return attempt(driver)
            except RecordError:
                raise
            except Exception as exc:
                self._rollback(driver)
                if _is_conflict(exc):
                    self._reload_heads()
                    continue
                if _is_disconnect(exc):
                    self._drop_connection()
                raise RecordWriteError(f"cannot {what} in {self._url}: {_cause(exc)}") from exc
        raise RecordWriteError(f"cannot {what} in {self._url}: still conflicting with other writers after "
                               f"{MAX_WRITE_ATTEMPTS} attempts")

    def _rollback(self, driver: Any) -> None:
        """Roll back an open SQLite transaction after a failed attempt (PostgreSQL statements are atomic)."""
        try:
            if self.dialect == "sqlite" and driver.in_transaction:
                driver.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection is gone; the next attempt reconnects
            self._drop_connection()

    def _insert_header(self, fields: dict[str, Any], prefix: str | None) -> str:
        """Insert a batch/registry header and its ledger row in one transaction; with `prefix`, number the batch id
        as the next free PREFIXNNNN. Returns the batch id."""

        def attempt(driver: Any) -> str:
            cur = driver.cursor()
            try:
                if self.dialect == "sqlite":
                    cur.execute("BEGIN IMMEDIATE")
                    self._header_rows(cur, fields, prefix)
                else:
                    with driver.transaction():
                        self._header_rows(cur, fields, prefix)
            finally:
                cur.close()
            batch_id, hhash, ledger = self._pending
            self._committed(batch_id, 0, hhash, ledger)
            return batch_id

        return str(self._with_retry(f"create {fields.get('batch_id') or 'a batch'}", attempt))

    def _header_rows(self, cur: Any, fields: dict[str, Any], prefix: str | None) -> str:
        """Statements of _insert_header inside its transaction."""
        values = dict(fields)
        if prefix is not None:
            cur.execute(self._q("SELECT MAX(batch_id) FROM batch WHERE batch_id LIKE ?"), (prefix + "%",))
            last = cur.fetchone()[0]
            number = int(last[len(prefix):]) + 1 if last else 1
            values["batch_id"] = f"{prefix}{number:04d}"
        batch_id = values["batch_id"]
        hhash = header_hash(values)
        row = dict(values, site_config=canonical_json(values["site_config"]), header_hash=hhash)
        columns = ", ".join(row)
        cur.execute(self._q(f"INSERT INTO batch ({columns}) VALUES ({', '.join('?' for _ in row)})"),
                    tuple(row.values()))
        ledger = self._ledger_row(batch_id, 0, hhash)
        self._insert_ledger(cur, batch_id, 0, hhash, ledger)
        if self.dialect == "sqlite":
            cur.execute("COMMIT")
        self._pending = (batch_id, hhash, ledger)
        return batch_id

    def _insert_ledger(self, cur: Any, batch_id: str, seq: int, record_hash: str, ledger: tuple[Any, ...]) -> int:
        """Insert one ledger row (inside the caller's transaction); return its global_seq."""
        line_seq, prev, digest, key_id, mac = ledger
        next_global = ("(SELECT COALESCE(MAX(global_seq), 0) + 1 FROM ledger)" if self.dialect == "sqlite"
                       else "nextval('ledger_global_seq')")
        cur.execute(self._q(f"INSERT INTO ledger (global_seq, batch_id, seq, record_hash, prev_hash, hash, line_id, "
                            f"line_seq, key_id, mac) VALUES ({next_global}, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                            "RETURNING global_seq"),
                    (batch_id, seq, record_hash, prev, digest, self.line_id, line_seq, key_id, mac))
        return int(cur.fetchone()[0])

    def _append_once(self, driver: Any, batch_id: str, kind: str, actor: str, data_text: str, ts: str
                     ) -> tuple[int, int, str, str]:
        """One attempt at appending: (seq, global_seq, prev_hash, hash), committed; raises on a conflict."""
        cur = driver.cursor()
        try:
            last_seq, prev = self._batch_head(cur, batch_id)
            seq = last_seq + 1
            digest = entry_hash_text(prev, batch_id=batch_id, seq=seq, ts=ts, kind=kind, actor=actor,
                                     data_text=data_text)
            ledger = self._ledger_row(batch_id, seq, digest)
            line_seq, lprev, ldigest, key_id, mac = ledger
            if self.dialect == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
                global_seq = self._insert_ledger(cur, batch_id, seq, digest, ledger)
                cur.execute("INSERT INTO entry (batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (batch_id, seq, global_seq, ts, kind, actor, data_text, prev, digest))
                cur.execute("COMMIT")
            else:  # one statement, one round trip, its own transaction
                cur.execute(_PG_APPEND, (batch_id, seq, digest, lprev, ldigest, self.line_id, line_seq, key_id, mac,
                                         batch_id, seq, ts, kind, actor, data_text, prev, digest))
                global_seq = int(cur.fetchone()[0])
        finally:
            cur.close()
        self._committed(batch_id, seq, digest, ledger)
        return seq, global_seq, prev, digest

    def _check_open(self, what: str) -> None:
        """Raise RecordWriteError when the store was closed or opened read-only."""
        if self._closed:
            raise RecordWriteError(f"cannot {what}: the record store is closed")
        if self.read_only:
            raise RecordWriteError(f"cannot {what}: the record is open read-only (inspection commands change nothing)")

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

    def verify(self, batch_id: str | None = None, *, anchor: tuple[int, str] | None = None, jobs: int = 1
               ) -> VerifyReport:
        """Check the hash chains, ledgers, MACs and signatures (see verify.verify)."""
        from fillfinish.record.verify import verify

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


def _is_conflict(exc: BaseException) -> bool:
    """True for a unique-key violation: another writer appended the same seq first (retry with fresh heads)."""
    import sqlite3

    if isinstance(exc, sqlite3.IntegrityError):  # a unique key, or migration 0004's guard against a taken key
        return "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc) or "insert over an existing" in str(exc)
    try:
        import psycopg.errors

        return isinstance(exc, psycopg.errors.UniqueViolation)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False


def _is_disconnect(exc: BaseException) -> bool:
    """True when the write connection itself failed (reconnect on the next write)."""
    import sqlite3

    if isinstance(exc, sqlite3.ProgrammingError):
        return True
    try:
        import psycopg

        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    except ImportError:  # pragma: no cover
        return False


def _cause(exc: BaseException) -> str:
    """A one-line cause for messages: the DBAPI error text when there is one, without SQLAlchemy's long tail."""
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        if orig is not None:
            return f"{type(orig).__name__}: {str(orig).strip().splitlines()[0] if str(orig).strip() else ''}"
        return str(exc).splitlines()[0]
    text_ = str(exc).strip()
    return f"{type(exc).__name__}: {text_.splitlines()[0] if text_ else ''}"
