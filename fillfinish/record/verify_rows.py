"""How verify reads the record: raw DB-API rows in one read-only snapshot, streamed in chunks (never the whole record).

Used by the batch check, the ledger check and their worker processes (verify_parallel.py); it trusts no ORM, trigger
or constraint: rows are plain tuples as the database returns them.
"""

from __future__ import annotations

import os
from itertools import chain
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

class _Entry(NamedTuple):
    """An entry row as verify reads it."""

    id: int
    batch_id: str
    seq: int
    global_seq: int
    ts: str
    kind: str
    actor: str
    data: str
    prev_hash: str
    hash: str


class _Ledger(NamedTuple):
    """A ledger row as verify reads it."""

    global_seq: int
    batch_id: str
    seq: int
    record_hash: str
    prev_hash: str
    hash: str
    line_id: str
    line_seq: int
    key_id: str | None
    mac: str | None


_HEADER_COLUMNS = ("batch_id", "created_at", "product", "product_code", "recipe_name", "recipe_version",
                   "recipe_hash", "recipe_snapshot", "lot", "planned_vials", "operator", "mode", "site_config",
                   "header_hash")
_Header = NamedTuple("_Header", [(name, Any) for name in _HEADER_COLUMNS])  # type: ignore[misc]
_ENTRY_SQL = "SELECT id, batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash FROM entry"
_LEDGER_SQL = ("SELECT global_seq, batch_id, seq, record_hash, prev_hash, hash, line_id, line_seq, key_id, mac "
               "FROM ledger")


class _nothing:
    """A do-nothing context manager."""

    def __enter__(self) -> None:
        """Nothing to do."""

    def __exit__(self, *exc: object) -> None:
        """Nothing to undo."""


class _snapshot:
    """A read transaction on a raw DB-API connection of the store (one consistent snapshot of the whole record)."""

    def __init__(self, store: Any) -> None:
        """Check a connection out of the store's pool."""
        self._fairy = store.engine.raw_connection()
        self._dialect = store.dialect
        self.conn = self._fairy.driver_connection

    def __enter__(self) -> Any:
        """Begin the snapshot."""
        _begin_snapshot(self.conn, self._dialect)
        return self.conn

    def __exit__(self, *exc: object) -> None:
        """End it and give the connection back."""
        try:
            self.conn.rollback()
        finally:
            self._fairy.close()


def _begin_snapshot(conn: Any, dialect: str) -> None:
    """Start a read-only snapshot: BEGIN on SQLite (WAL), REPEATABLE READ on PostgreSQL."""
    if dialect == "sqlite":
        if not conn.in_transaction:
            conn.execute("BEGIN")
    else:
        if getattr(conn, "autocommit", False):
            conn.autocommit = False
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def _q(dialect: str, sql: str) -> str:
    """SQL with ? placeholders in the driver's paramstyle."""
    return sql if dialect == "sqlite" else sql.replace("?", "%s")


_CURSOR_COUNT = [0]


CHUNK_ROWS = 5000
"""Rows fetched per round trip (the most rows verify holds from one stream at a time)."""


def _stream(conn: Any, dialect: str, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    """Rows of a query without loading them all (flattened in C from chunks of CHUNK_ROWS)."""
    return chain.from_iterable(_chunks(conn, dialect, sql, params))


def _chunks(conn: Any, dialect: str, sql: str, params: Sequence[Any]) -> Iterator[list[tuple[Any, ...]]]:
    """Lists of up to CHUNK_ROWS rows of a query: a plain cursor on SQLite, a server-side cursor on PostgreSQL."""
    if dialect == "sqlite":
        cur = conn.execute(sql, tuple(params))
    else:
        _CURSOR_COUNT[0] += 1
        cur = conn.cursor(name=f"fillfinish_verify_{os.getpid()}_{_CURSOR_COUNT[0]}")
        cur.itersize = CHUNK_ROWS
        cur.execute(_q(dialect, sql), tuple(params))
    try:
        while rows := cur.fetchmany(CHUNK_ROWS):
            yield rows
    finally:
        cur.close()


def _batch_ids(conn: Any, dialect: str, batch_id: str | None) -> list[str]:
    """Every batch id named by a header, an entry or a ledger row, in the database's order (one id when given)."""
    if batch_id is not None:
        sql = ("SELECT batch_id FROM batch WHERE batch_id = ? UNION SELECT batch_id FROM entry WHERE batch_id = ? "
               "UNION SELECT batch_id FROM ledger WHERE batch_id = ?")
        return [row[0] for row in _fetchall(conn, dialect, sql, (batch_id,) * 3)]
    sql = ("SELECT batch_id FROM batch UNION SELECT DISTINCT batch_id FROM entry "
           "UNION SELECT DISTINCT batch_id FROM ledger ORDER BY 1")
    return [row[0] for row in _fetchall(conn, dialect, sql, ())]


def _line_ids(conn: Any, dialect: str) -> list[str]:
    """Every line id of the ledger, in order: one index probe a line (a skip scan of uq_ledger_line_seq), not a scan of
    every row (a GROUP BY over a million ledger rows took 0.35 s)."""
    rows = _fetchall(conn, dialect, "WITH RECURSIVE line(id) AS (SELECT MIN(line_id) FROM ledger UNION ALL "
                     "SELECT (SELECT MIN(line_id) FROM ledger WHERE line_id > line.id) FROM line "
                     "WHERE line.id IS NOT NULL) SELECT id FROM line WHERE id IS NOT NULL", ())
    return [str(row[0]) for row in rows]


def _count(conn: Any, dialect: str, table: str) -> int:
    """The number of rows of `table` (entry or ledger)."""
    assert table in ("entry", "ledger")
    return int(_fetchall(conn, dialect, f"SELECT COUNT(*) FROM {table}", ())[0][0])


def _fetchall(conn: Any, dialect: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """All rows of a small query."""
    cur = conn.cursor()
    try:
        cur.execute(_q(dialect, sql), tuple(params))
        return list(cur.fetchall())
    finally:
        cur.close()



def _connect(url: str, dialect: str) -> Any:
    """A fresh DB-API connection for a worker process (never one inherited from the parent)."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    fairy = engine.raw_connection()
    _KEEP.append((engine, fairy))  # the pool proxy closes the connection when it is garbage collected
    conn = fairy.driver_connection
    if dialect == "sqlite":
        conn.isolation_level = None
    _begin_snapshot(conn, dialect)
    return conn


_KEEP: list[Any] = []
"""Engines and connection proxies of a worker process (one per task; the worker ends with the pool)."""


def _release() -> None:
    """Close the worker's connections of the task that ended."""
    while _KEEP:
        engine, fairy = _KEEP.pop()
        try:
            fairy.driver_connection.rollback()
            fairy.close()
        finally:
            engine.dispose()
