"""The record's write path, a part of RecordStore kept in its own module: the DB-API connection, the chain heads in
memory (checked against the database when the connection opens and after a conflict), one transaction per entry
(SQLite: BEGIN IMMEDIATE + two inserts + COMMIT; PostgreSQL: one statement in autocommit), retries on conflicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fillfinish.record.chain import GENESIS_LEDGER_HASH, canonical_json, entry_hash_text, header_hash, line_ledger_hash
from fillfinish.record.connect import cause as _cause
from fillfinish.record.connect import is_conflict as _is_conflict
from fillfinish.record.connect import is_disconnect as _is_disconnect
from fillfinish.record.errors import RecordError, RecordWriteError, UnknownBatchError
from fillfinish.record.sitekey import SiteKey, SiteKeyError, ledger_mac_message
from fillfinish.record.witness import Witness, database_identity

MAX_WRITE_ATTEMPTS = 20
"""Attempts of one write when other writers keep appending first (each conflict re-reads the chain heads)."""
_PG_APPEND = (
    "WITH l AS (INSERT INTO ledger (global_seq, batch_id, seq, record_hash, prev_hash, hash, line_id, line_seq, key_id,"
    " mac) VALUES (nextval('ledger_global_seq'), %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " RETURNING global_seq, batch_id, seq, record_hash) "
    "INSERT INTO entry (batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash) "
    "SELECT l.batch_id, l.seq, l.global_seq, %s, %s, %s, %s, %s, l.record_hash FROM l RETURNING global_seq"
)
"""PostgreSQL: an entry and its ledger row in one statement (one round trip, one transaction)."""
_PG_APPEND_NAME = b"fillfinish_append"
_PG_APPEND_NUMBERED = _PG_APPEND.replace("%s", "{}").format(*(f"${i}" for i in range(1, 15))).encode()
"""The same statement with $1..$14, prepared once per write connection under _PG_APPEND_NAME (decision 0024)."""


_LEDGER_INSERT = {
    dialect: ("INSERT INTO ledger (global_seq, batch_id, seq, record_hash, prev_hash, hash, line_id, line_seq, key_id, "
              f"mac) VALUES ({next_global}, {', '.join([mark] * 9)}) RETURNING global_seq")
    for dialect, next_global, mark in (("sqlite", "(SELECT COALESCE(MAX(global_seq), 0) + 1 FROM ledger)", "?"),
                                       ("postgresql", "nextval('ledger_global_seq')", "%s"))
}
"""One ledger row (headers, and SQLite's entries) in each driver's paramstyle, built once."""
_SQLITE_ENTRY_INSERT = ("INSERT INTO entry (batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


class WritePath:
    """Write path of RecordStore (state set in RecordStore.__init__)."""

    line_id: str
    _url: str
    _raw_url: str
    _raw: Any
    _engine: Any
    _line_head: tuple[int, str] | None
    _batch_heads: dict[str, tuple[int, str]]
    _witness: Witness | None
    _pending: tuple[str, str, tuple[Any, ...]]
    _cursor: tuple[Any, Any] | None  # (driver connection, its append cursor)

    def site_key(self, *, create: bool = False) -> SiteKey | None:  # pragma: no cover - RecordStore's
        """The site key (RecordStore.site_key)."""
        raise NotImplementedError

    @property
    def dialect(self) -> str:  # pragma: no cover - RecordStore's
        """'sqlite' or 'postgresql' (RecordStore.dialect)."""
        raise NotImplementedError

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

    def _write_cursor(self, driver: Any) -> Any:
        """The append cursor of the write connection `driver`, made once (a psycopg cursor costs tens of us to make)."""
        held = getattr(self, "_cursor", None)
        if held is None or held[0] is not driver:
            held = (driver, driver.cursor())
            self._cursor = held
        return held[1]

    def _drop_connection(self) -> None:
        """Forget the write connection (after a connection failure); the next write reconnects and re-reads heads."""
        self._cursor = None
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
        cur.execute(_LEDGER_INSERT[self.dialect],
                    (batch_id, seq, record_hash, prev, digest, self.line_id, line_seq, key_id, mac))
        return int(cur.fetchone()[0])

    def _append_once(self, driver: Any, batch_id: str, kind: str, actor: str, data_text: str, ts: str
                     ) -> tuple[int, int, str, str]:
        """One attempt at appending: (seq, global_seq, prev_hash, hash), committed; raises on a conflict."""
        cur = self._write_cursor(driver)
        # the cursor stays open for the next append (one per write connection)
        last_seq, prev = self._batch_head(cur, batch_id)
        seq = last_seq + 1
        digest = entry_hash_text(prev, batch_id=batch_id, seq=seq, ts=ts, kind=kind, actor=actor,
                                 data_text=data_text)
        ledger = self._ledger_row(batch_id, seq, digest)
        line_seq, lprev, ldigest, key_id, mac = ledger
        if self.dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
            global_seq = self._insert_ledger(cur, batch_id, seq, digest, ledger)
            cur.execute(_SQLITE_ENTRY_INSERT, (batch_id, seq, global_seq, ts, kind, actor, data_text, prev, digest))
            cur.execute("COMMIT")
        else:  # one statement, one round trip, its own transaction
            global_seq = self._pg_append(driver, (batch_id, seq, digest, lprev, ldigest, self.line_id, line_seq,
                                                  key_id, mac, ts, kind, actor, data_text, prev))
        self._committed(batch_id, seq, digest, ledger)
        return seq, global_seq, prev, digest

    def _pg_append(self, driver: Any, params: tuple[Any, ...]) -> int:
        """Run the append statement through libpq's prepared-statement call (prepared once per connection): the same
        statement, autocommit and synchronous commit as cursor.execute, without psycopg's per-call Python layers
        (about a third of the client's CPU per append). Raises psycopg's error for the result's SQLSTATE."""
        import psycopg
        from psycopg import errors
        from psycopg.pq import ConnStatus, ExecStatus

        pgconn = driver.pgconn
        if getattr(self, "_pg_prepared", None) is not driver:
            result = pgconn.prepare(_PG_APPEND_NAME, _PG_APPEND_NUMBERED)
            if result.status != ExecStatus.COMMAND_OK:
                raise errors.error_from_result(result, encoding="utf-8")
            self._pg_prepared = driver
        result = pgconn.exec_prepared(_PG_APPEND_NAME, [None if value is None else str(value).encode("utf-8") for value in params])
        if result.status != ExecStatus.TUPLES_OK:
            if pgconn.status != ConnStatus.OK:
                self._pg_prepared = None
                raise psycopg.OperationalError(f"the connection was lost: {pgconn.get_error_message()}")
            raise errors.error_from_result(result, encoding="utf-8")
        return int(result.get_value(0, 0))

    def _check_open(self, what: str) -> None:
        """Raise RecordWriteError when the store was closed or opened read-only."""
        if self._closed:
            raise RecordWriteError(f"cannot {what}: the record store is closed")
        if self.read_only:
            raise RecordWriteError(f"cannot {what}: the record is open read-only (inspection commands change nothing)")

    def _sync_commits(self, durable: bool) -> None:
        """SQLite: the next commit syncs the WAL (FULL, and with it every commit before) or only writes it (NORMAL).
        A reconnect comes back FULL (connect.py), so a stale NORMAL here only makes a commit more durable."""
        if self.dialect != "sqlite" or getattr(self, "_sync_full", True) == durable:
            return
        self._connection().execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._sync_full = durable
