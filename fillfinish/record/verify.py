"""Verification of the batch record (21 CFR 11.10(a)): tell an altered record from a true one, from the rows alone.

It reads the raw rows (it does not trust triggers, constraints or the ORM), recomputes every header, entry and ledger
hash and walks the per-batch chains and each line's ledger chain, reporting per batch the FIRST problem with its seq
and a kind: "changed", "inserted", "removed", "reordered", "header changed" or "signature not valid". With the site
key it also checks every ledger row's MAC, every signature's proof and each line's witness (so rows appended,
recomputed or cut off by someone without the key are found); without it, it says what it could not check.

It streams: one batch at a time (entries and ledger rows read in batch order) and each line's ledger in line order,
so memory does not grow with the record; `jobs` > 1 splits the batches and the ledger over worker processes.
What it can and cannot detect is written down in docs/record.md.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from fillfinish.record.chain import (
    GENESIS_LEDGER_HASH,
    HEADER_FIELDS,
    canonical_text,
    entry_hash_text,
    header_hash,
    ledger_hash,
    line_ledger_hash,
)
from fillfinish.record.sitekey import SiteKey, SiteKeyError, entry_signature_message, ledger_mac_message
from fillfinish.record.store import UnknownBatchError
from fillfinish.record.tombstones import PURGE_REGISTRY, TOMBSTONE_KIND, check_purged, purged_line

if TYPE_CHECKING:
    from fillfinish.record.store import RecordStore

PROBLEM_KINDS: tuple[str, ...] = ("changed", "inserted", "removed", "reordered", "header changed",
                                  "signature not valid")
"""The kinds of problem verify names."""

SIGNATURE_KIND = "signature"
PARALLEL_MIN_ROWS = 200_000
"""Below this many ledger rows `jobs` > 1 is not worth starting processes for."""


@dataclass(frozen=True)
class Problem:
    """The first thing found wrong: at which seq (0 = the header; line_seq for a ledger), what kind, and why."""

    seq: int
    kind: str
    detail: str
    entry_kind: str | None = None

    def describe(self, what: str = "entry") -> str:
        """One line for people, e.g. 'entry 7 (vial): changed: content does not match its hash'."""
        where = "header" if self.seq == 0 and what == "entry" else f"{what} {self.seq}"
        if self.entry_kind:
            where += f" ({self.entry_kind})"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class BatchResult:
    """Verification of one batch: ok, how many entries were checked, the first problem if any, and the seqs of every
    signature entry that is not valid (not bound to this batch, or without a valid proof under the site key)."""

    batch_id: str
    ok: bool
    entries_checked: int
    problem: Problem | None = None
    invalid_signatures: tuple[int, ...] = ()
    note: str | None = None  # e.g. how a purged batch is shown (fillfinish.record.tombstones)


@dataclass(frozen=True)
class LedgerResult:
    """Verification of the ledger chains (one per line, write order), their MACs, witnesses and an optional anchor.

    `head` is the head (line_seq, hash) of the store's own line (or of the only line); `heads` names every line's."""

    ok: bool
    rows_checked: int
    head: tuple[int, str] | None
    problem: Problem | None = None
    line: str | None = None
    heads: dict[str, tuple[int, str]] = field(default_factory=dict, hash=False)
    keyed: bool = False
    unchecked: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyReport:
    """Result of verify(): one BatchResult per batch checked plus the ledger result; ok only if all are ok."""

    batches: list[BatchResult]
    ledger: LedgerResult
    accounts: Any = None

    @property
    def ok(self) -> bool:
        """True when every batch, the ledger (and the accounts, when checked) verified."""
        accounts_ok = self.accounts is None or getattr(self.accounts, "ok", True)
        return self.ledger.ok and accounts_ok and all(result.ok for result in self.batches)

    @property
    def key_checked(self) -> bool:
        """True when the MACs, signature proofs and witnesses were checked with the site key."""
        return self.ledger.keyed

    def result(self, batch_id: str) -> BatchResult:
        """The result of one batch (KeyError if it was not checked)."""
        for result in self.batches:
            if result.batch_id == batch_id:
                return result
        raise KeyError(batch_id)

    def lines(self) -> list[str]:
        """Human-readable lines: one per batch, one for the ledger, what could not be checked, the accounts."""
        out = []
        for result in self.batches:
            if result.ok and result.note:
                out.append(f"{result.batch_id}: {result.note}")
            elif result.ok:
                out.append(f"{result.batch_id}: intact ({result.entries_checked} entries)")
            else:
                assert result.problem is not None
                out.append(f"{result.batch_id}: NOT INTACT: {result.problem.describe()}")
        led = self.ledger
        head = f"head {led.head[0]}:{led.head[1]}" if led.head else "empty"
        lines_text = f", {len(led.heads)} lines" if len(led.heads) > 1 else ""
        if led.ok:
            out.append(f"ledger: intact ({led.rows_checked} rows{lines_text}, {head})")
        else:
            assert led.problem is not None
            where = f" line {led.line}" if led.line and len(led.heads) > 1 else ""
            out.append(f"ledger: NOT INTACT:{where} {led.problem.describe('row')} ({head})")
        out.extend(f"note: {note}" for note in led.notes)
        out.extend(f"NOT CHECKED: {text}" for text in led.unchecked)
        if self.accounts is not None:
            out.extend(self.accounts.lines())
        return out


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


# --------------------------------------------------------------------------------------------------- entry points
def verify(store: RecordStore, batch_id: str | None = None, *, anchor: tuple[int, str] | None = None,
           jobs: int = 1, accounts: bool = True) -> VerifyReport:
    """Verify one batch (or all), the ledgers and (with `accounts`) the accounts against their keyed trail.

    `anchor` = (line_seq, hash) of the store's line noted earlier outside the database. `jobs` > 1 uses that many
    worker processes for a large record. Raises UnknownBatchError when `batch_id` is named nowhere in the record.
    """
    try:
        key = store.site_key()
        key_problem = None
    except SiteKeyError as exc:
        key, key_problem = None, str(exc)
    marks, witness_notes = _witness_marks(store, key)
    url = store._raw_url  # noqa: SLF001 - verify is part of the record package
    dialect = store.dialect
    with store._lock if _shared(store) else _nothing(), _snapshot(store) as conn:  # noqa: SLF001
        ids = _batch_ids(conn, dialect, batch_id)
        lines = _line_sizes(conn, dialect)
        if batch_id is not None and not ids:
            raise UnknownBatchError(f"unknown batch {batch_id!r} in {store.url}")
        total = sum(size for _, size in lines)
        if jobs > 1 and batch_id is None and total >= PARALLEL_MIN_ROWS:
            results, line_results = _parallel(url, dialect, key, ids, lines, jobs)
        else:
            results = _check_batches(conn, dialect, key, ids, batch_id)
            line_results = {line: _check_line(conn, dialect, key, line, 1, None) for line, _ in lines}
    with store._lock if _shared(store) else _nothing():  # noqa: SLF001
        ledger = _combine_ledger(store, line_results, key, key_problem, marks, witness_notes, anchor)
    report = VerifyReport(batches=results, ledger=ledger)
    if accounts and batch_id is None:
        report = _with_accounts(store, report)
    return report


def _with_accounts(store: RecordStore, report: VerifyReport) -> VerifyReport:
    """Add the check of the accounts against their keyed trail (fillfinish.people.trail), when that module exists."""
    try:
        from fillfinish.people.trail import check_accounts
    except ImportError:  # pragma: no cover - the people package is part of fillfinish
        return report
    return VerifyReport(batches=report.batches, ledger=report.ledger, accounts=check_accounts(store))


def _shared(store: RecordStore) -> bool:
    """True when the store's pool has one connection for everything (in-memory SQLite): hold its lock meanwhile."""
    from sqlalchemy.pool import StaticPool

    return isinstance(store.engine.pool, StaticPool)


class _nothing:
    """A do-nothing context manager."""

    def __enter__(self) -> None:
        """Nothing to do."""

    def __exit__(self, *exc: object) -> None:
        """Nothing to undo."""


class _snapshot:
    """A read transaction on a raw DB-API connection of the store (one consistent snapshot of the whole record)."""

    def __init__(self, store: RecordStore) -> None:
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


def _stream(conn: Any, dialect: str, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    """Rows of a query without loading them all: a plain cursor on SQLite, a server-side cursor on PostgreSQL."""
    if dialect == "sqlite":
        cur = conn.execute(sql, tuple(params))
        try:
            while rows := cur.fetchmany(2000):
                yield from rows
        finally:
            cur.close()
        return
    _CURSOR_COUNT[0] += 1
    cur = conn.cursor(name=f"fillfinish_verify_{os.getpid()}_{_CURSOR_COUNT[0]}")
    cur.itersize = 5000
    try:
        cur.execute(_q(dialect, sql), tuple(params))
        yield from cur
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


def _line_sizes(conn: Any, dialect: str) -> list[tuple[str, int]]:
    """(line_id, number of rows) of every line's ledger."""
    rows = _fetchall(conn, dialect, "SELECT line_id, COUNT(*) FROM ledger GROUP BY line_id ORDER BY line_id", ())
    return [(str(line), int(count)) for line, count in rows]


def _fetchall(conn: Any, dialect: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """All rows of a small query."""
    cur = conn.cursor()
    try:
        cur.execute(_q(dialect, sql), tuple(params))
        return list(cur.fetchall())
    finally:
        cur.close()


# --------------------------------------------------------------------------------------------------- batches
def _grouped(rows: Iterator[tuple[Any, ...]], rank: dict[str, int]) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    """Consecutive rows with the same batch_id (column 1 or 0 as given by the row shape) as (rank, rows)."""
    current: str | None = None
    group: list[tuple[Any, ...]] = []
    for row in rows:
        bid = row[1]
        if bid != current:
            if group:
                yield rank.get(current, -1), group  # type: ignore[arg-type]
            current, group = bid, []
        group.append(row)
    if group:
        yield rank.get(current, -1), group  # type: ignore[arg-type]


def _check_batches(conn: Any, dialect: str, key: SiteKey | None, ids: list[str], only: str | None,
                   ranged: bool = False) -> list[BatchResult]:
    """Check every batch of `ids` (with `ranged`, ids is one contiguous run of the database's batch order and only
    that id range is read), streaming headers, entries and ledger rows."""
    if not ids:
        return []
    where, params = ("WHERE batch_id = ?", [only]) if only is not None else ("", [])
    if ranged:
        where, params = "WHERE batch_id >= ? AND batch_id <= ?", [ids[0], ids[-1]]
    rank = {bid: i for i, bid in enumerate(ids)}
    headers = _stream(conn, dialect, f"SELECT {', '.join(_HEADER_COLUMNS)} FROM batch {where} ORDER BY batch_id",
                      params)
    header_iter = ((rank.get(row[0], -1), row) for row in headers)
    entries = _grouped(_stream(conn, dialect, f"{_ENTRY_SQL} {where} ORDER BY batch_id, seq, id", params), rank)
    ledger = _grouped(
        ((None, row[0], row[1], row[2]) for row in _stream(
            conn, dialect, f"SELECT batch_id, seq, record_hash FROM ledger {where} ORDER BY batch_id, seq", params)),
        rank)
    results: list[BatchResult] = []
    tombstones = _tombstones(conn, dialect)
    next_header, next_entries, next_ledger = next(header_iter, None), next(entries, None), next(ledger, None)
    for bid in ids if only is None else [only]:
        i = rank[bid]
        header = entry_rows = ledger_rows = None
        while next_header is not None and next_header[0] < i:
            next_header = next(header_iter, None)
        if next_header is not None and next_header[0] == i:
            header, next_header = _Header._make(next_header[1]), next(header_iter, None)
        while next_entries is not None and next_entries[0] < i:
            next_entries = next(entries, None)
        if next_entries is not None and next_entries[0] == i:
            entry_rows, next_entries = [_Entry._make(r) for r in next_entries[1]], next(entries, None)
        while next_ledger is not None and next_ledger[0] < i:
            next_ledger = next(ledger, None)
        if next_ledger is not None and next_ledger[0] == i:
            ledger_rows, next_ledger = next_ledger[1], next(ledger, None)
        logged = {row[2]: row[3] for row in ledger_rows or ()}
        tombstone = tombstones.get(bid)
        if tombstone is not None and header is None and not entry_rows:
            purged = [_PurgedLedgerRow(seq, seq, record_hash) for seq, record_hash in sorted(logged.items())]
            if check_purged(tombstone, header, [], purged) is None:
                results.append(BatchResult(bid, True, 0, note=purged_line(tombstone)))
                continue
        results.append(check_batch(bid, header, entry_rows or [], logged, key=key))
    return results


class _PurgedLedgerRow(NamedTuple):
    """A ledger row of a purged batch, in the shape fillfinish.record.tombstones compares (one batch: seq order is
    write order)."""

    global_seq: int
    seq: int
    record_hash: str


def _tombstones(conn: Any, dialect: str) -> dict[str, dict[str, Any]]:
    """batch id -> tombstone data of purged batches (REG-PURGE registry; the last tombstone of a batch wins)."""
    out: dict[str, dict[str, Any]] = {}
    rows = _stream(conn, dialect, "SELECT data, seq FROM entry WHERE batch_id = ? AND kind = ? ORDER BY seq",
                   [PURGE_REGISTRY, TOMBSTONE_KIND])
    for data_text, seq in rows:
        try:
            data = json.loads(data_text)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("batch_id"), str):
            out[data["batch_id"]] = dict(data, tombstone_entry=seq)
    return out


def _recompute_header(header: Any) -> str | None:
    """The header hash recomputed from a batch row, or None when its stored fields are not readable or the stored
    site config is not exactly its canonical JSON text."""
    try:
        if canonical_text(header.site_config) != header.site_config:
            return None
        fields = {name: getattr(header, name) for name in HEADER_FIELDS}
        fields["site_config"] = json.loads(header.site_config)
        return header_hash(fields)
    except (ValueError, TypeError):
        return None


def _recompute_entry(row: Any) -> str | None:
    """The entry hash recomputed from an entry row, or None when its data is not exactly canonical JSON text
    (unreadable, duplicate keys, other spacing or escapes than the canonical form)."""
    try:
        if canonical_text(row.data) != row.data:
            return None
        return entry_hash_text(row.prev_hash, batch_id=row.batch_id, seq=row.seq, ts=row.ts, kind=row.kind,
                               actor=row.actor, data_text=row.data)
    except (ValueError, TypeError):
        return None


def signature_problem(row: Any, data: dict[str, Any], by_hash: dict[str, Any], header_hash_: str,
                      key: SiteKey | None) -> str | None:
    """Why a signature entry is not valid (None when it is): it must sign an earlier entry (or the header) of its own
    batch, be signed by its actor, and (with the key) carry a proof made when its signer gave their password."""
    signed_hash, signed_seq = data.get("signed_hash"), data.get("signed_seq")
    if not isinstance(signed_hash, str) or not isinstance(signed_seq, int) or isinstance(signed_seq, bool):
        return "it names no signed entry"
    if signed_seq == 0:
        bound = signed_hash == header_hash_
    else:
        target = by_hash.get(signed_hash)
        bound = target is not None and target.seq == signed_seq and target.seq < row.seq
    if not bound:
        return "it signs a hash that is not an earlier entry of this batch (copied from another record?)"
    if data.get("user_id", row.actor) != row.actor:
        return f"it names user {data.get('user_id')!r} but was written by {row.actor!r}"
    if key is None:
        return None
    proof, signed_at = data.get("proof"), data.get("signed_at")
    if not isinstance(proof, str) or not isinstance(signed_at, str):
        return "it carries no proof that its signer gave their password (written outside fillfinish's signing)"
    message = entry_signature_message(batch_id=row.batch_id, signed_hash=signed_hash, signed_seq=signed_seq,
                                      user_id=row.actor, meaning=str(data.get("meaning")), signed_at=signed_at)
    if not key.check(message, proof):
        return "its proof does not match under the site key (forged, or copied from another batch or signer)"
    return None


def check_batch(batch_id: str, header: Any, entries: Sequence[Any], ledger: Any, *,
                key: SiteKey | None = None) -> BatchResult:
    """Verify one batch from its raw header row, entry rows (seq order) and ledger (rows with .seq/.record_hash, or a
    {seq: record_hash} dict); first problem wins; every invalid signature is listed."""
    checked = len(entries)
    invalid: list[int] = []

    def bad(problem: Problem) -> BatchResult:
        """The failed result of this batch."""
        return BatchResult(batch_id, False, checked, problem, tuple(invalid))

    logged = ledger if isinstance(ledger, dict) else {row.seq: row.record_hash for row in ledger}
    if header is None:
        return bad(Problem(0, "removed", "the batch header is missing (its entries or ledger rows remain)"))
    recomputed = _recompute_header(header)
    if recomputed != header.header_hash:
        return bad(Problem(0, "header changed", "header fields do not match the header hash"))
    if 0 not in logged:
        return bad(Problem(0, "inserted", "the batch header is not in the ledger (not written by the record store)"))
    if logged[0] != header.header_hash:
        return bad(Problem(0, "header changed", "header hash differs from the ledger (header rewritten and rehashed)"))

    by_hash = {row.hash: row for row in entries}
    prev = header.header_hash
    expected = 1
    first: Problem | None = None
    for i, row in enumerate(entries):
        text = row.data
        if not (row.seq == expected and row.prev_hash == prev and logged.get(expected) == row.hash  # fast path
                and canonical_text(text) == text
                and entry_hash_text(prev, batch_id=row.batch_id, seq=expected, ts=row.ts, kind=row.kind,
                                    actor=row.actor, data_text=text) == row.hash):
            problem = _entry_problem(i, row, entries, expected, prev, header.header_hash, by_hash, logged)
            if problem is not None:
                first = first or problem
                break
        if row.kind == SIGNATURE_KIND:
            why = signature_problem(row, json.loads(row.data), by_hash, header.header_hash, key)
            if why is not None:
                invalid.append(row.seq)
                first = first or Problem(row.seq, "signature not valid", why, row.kind)
        prev = row.hash
        expected += 1
    if first is not None:
        return bad(first)
    tail = sorted(seq for seq in logged if seq >= expected)
    if tail:
        span = f"{tail[0]}" if len(tail) == 1 else f"{tail[0]}..{tail[-1]}"
        return bad(Problem(tail[0], "removed", f"entries {span} were removed from the end (the ledger still lists them)"))
    return BatchResult(batch_id, True, checked)


def _entry_problem(i: int, row: Any, entries: Sequence[Any], expected: int, prev: str, header_hash_: str,
                   by_hash: dict[str, Any], logged: dict[int, str]) -> Problem | None:
    """The problem of one entry in its chain position, or None."""
    if row.seq < expected:
        return Problem(row.seq, "inserted", f"a second entry with seq {row.seq}", row.kind)
    if row.seq > expected:
        missing = f"{expected}" if row.seq == expected + 1 else f"{expected}..{row.seq - 1}"
        return Problem(expected, "removed", f"entries {missing} are missing (gap before seq {row.seq})")
    if row.prev_hash != prev:
        before_prev = header_hash_ if i == 1 else entries[i - 2].hash if i >= 2 else None
        if before_prev is not None and row.prev_hash == before_prev:
            return Problem(row.seq - 1, "inserted", f"entry {row.seq} links past it to entry {row.seq - 2}",
                           entries[i - 1].kind)
        if row.prev_hash in by_hash:
            other = by_hash[row.prev_hash].seq
            return Problem(row.seq, "reordered", f"it links to entry {other}, not to entry {row.seq - 1}", row.kind)
        return Problem(row.seq, "removed", f"chain break: it does not link to entry {row.seq - 1} (an entry before it "
                                           "was removed or the chain rewritten)", row.kind)
    if _recompute_entry(row) != row.hash:
        if canonical_text(row.data) not in (None, row.data):
            return Problem(row.seq, "changed", "its stored data is not its canonical JSON text (duplicate keys, "
                                               "spacing or escapes differ from what was hashed)", row.kind)
        return Problem(row.seq, "changed", "its content (ts, kind, actor or data) does not match its hash", row.kind)
    original = logged.get(row.seq)
    if original != row.hash:
        if original is not None and original not in by_hash:
            return Problem(row.seq, "changed", "rewritten with a recomputed hash: the ledger holds a different original",
                           row.kind)
        return Problem(row.seq, "inserted", "it is not in the ledger (not written by the record store)", row.kind)
    return None


# --------------------------------------------------------------------------------------------------- ledger
@dataclass
class _LineResult:
    """The check of one line's ledger (or one range of it)."""

    line: str
    rows: int
    head: tuple[int, str] | None
    problem: Problem | None
    keyed_rows: int
    legacy_rows: int
    hashes: dict[int, str] = field(default_factory=dict)  # line_seq -> hash of rows asked for (witness/anchor)


class _LineChecker:
    """Walks one line's ledger rows in line_seq order: links, hashes, MACs; remembers the first problem."""

    def __init__(self, line: str, key: SiteKey | None, expected: int = 1, prev: str = GENESIS_LEDGER_HASH,
                 keyed_before: bool = False) -> None:
        """Start at `expected` with the previous row's hash `prev`."""
        self.line, self.key, self.expected, self.prev = line, key, expected, prev
        self.keyed = keyed_before
        self._fingerprint = key.fingerprint if key is not None else ""
        self._hmac = key._hmac if key is not None else None  # noqa: SLF001 - the keyed state, copied per row
        self.rows = self.keyed_rows = self.legacy_rows = 0
        self.head: tuple[int, str] | None = None
        self.problem: Problem | None = None
        self._before_prev: str | None = None

    def feed(self, row: _Ledger) -> None:
        """Check one row."""
        self.rows += 1
        self.head = (row.line_seq, row.hash)
        if self.problem is not None:
            return
        self.problem = self._row_problem(row)
        self._before_prev, self.prev = self.prev, row.hash
        self.expected = row.line_seq + 1

    def _row_problem(self, row: _Ledger) -> Problem | None:
        """The problem of one row, or None."""
        seq = row.line_seq
        if seq < self.expected:
            return Problem(seq, "inserted", f"a second row with line_seq {seq}")
        if seq > self.expected:
            return Problem(self.expected, "removed",
                           f"rows {self.expected}..{seq - 1} are missing (records of some batch were removed)")
        if row.prev_hash != self.prev:
            if self._before_prev is not None and row.prev_hash == self._before_prev:
                return Problem(seq - 1, "inserted", f"row {seq} links past it")
            return Problem(seq, "removed", "chain break: it does not link to the row before it")
        if row.mac is None:
            if self.keyed:
                return Problem(seq, "inserted", "a row without a MAC after keyed rows (not written by the record "
                                                "store)")
            self.legacy_rows += 1
            recomputed = ledger_hash(row.prev_hash, global_seq=row.global_seq, batch_id=row.batch_id, seq=row.seq,
                                     record_hash=row.record_hash)
            return None if recomputed == row.hash else Problem(seq, "changed", "its content does not match its hash")
        self.keyed = True
        self.keyed_rows += 1
        recomputed = line_ledger_hash(row.prev_hash, line_id=row.line_id, line_seq=seq, batch_id=row.batch_id,
                                      seq=row.seq, record_hash=row.record_hash)
        if recomputed != row.hash:
            return Problem(seq, "changed", "its content does not match its hash")
        if self.key is not None:
            if row.key_id != self._fingerprint:
                return Problem(seq, "changed", f"keyed by an unknown key {row.key_id} (the site key is "
                                               f"{self._fingerprint}): written or recomputed without the site key")
            state = self._hmac.copy()
            state.update(f"ledger/1\x1f{row.line_id}\x1f{seq}\x1f{row.hash}\x1f{row.key_id}".encode())
            if not hmac.compare_digest(state.hexdigest(), row.mac):
                return Problem(seq, "changed", "its MAC does not match under the site key: written or recomputed "
                                               "without the key")
        return None


def _check_line(conn: Any, dialect: str, key: SiteKey | None, line: str, lo: int, hi: int | None,
                want: frozenset[int] = frozenset()) -> _LineResult:
    """Check rows lo..hi (None: to the end) of one line's ledger; the row before lo seeds the link."""
    expected, prev, keyed_before = 1, GENESIS_LEDGER_HASH, False
    if lo > 1:
        seed = _fetchall(conn, dialect, "SELECT hash, mac FROM ledger WHERE line_id = ? AND line_seq = ?",
                         (line, lo - 1))
        if seed:
            expected, prev, keyed_before = lo, seed[0][0], seed[0][1] is not None
        else:
            expected = lo
    checker = _LineChecker(line, key, expected, prev, keyed_before)
    where = "WHERE line_id = ? AND line_seq >= ?" + ("" if hi is None else " AND line_seq <= ?")
    params: list[Any] = [line, lo] + ([] if hi is None else [hi])
    hashes: dict[int, str] = {}
    for raw in _stream(conn, dialect, f"{_LEDGER_SQL} {where} ORDER BY line_seq", params):
        row = _Ledger._make(raw)
        checker.feed(row)
        if row.line_seq in want:
            hashes[row.line_seq] = row.hash
    return _LineResult(line, checker.rows, checker.head, checker.problem, checker.keyed_rows, checker.legacy_rows,
                       hashes)


def check_ledger(rows: Sequence[Any], anchor: tuple[int, str] | None = None, *,
                 key: SiteKey | None = None) -> LedgerResult:
    """Verify one line's ledger chain from rows in line_seq order (kept for callers holding rows in memory)."""
    checker = _LineChecker(rows[0].line_id if rows else "line-1", key)
    for row in rows:
        checker.feed(_Ledger(*(getattr(row, name) for name in _Ledger._fields)))
    problem = checker.problem
    if problem is None and anchor is not None:
        problem = _anchor_problem(anchor, {row.line_seq: row.hash for row in rows}, len(rows))
    return LedgerResult(problem is None, checker.rows, checker.head, problem)


def _anchor_problem(anchor: tuple[int, str], hashes: dict[int, str], rows: int) -> Problem | None:
    """The problem of the ledger against a (line_seq, hash) noted earlier, or None."""
    seq, digest = anchor
    if seq < 1:
        return Problem(seq, "removed", "an anchor's line_seq starts at 1")
    if seq not in hashes:
        return Problem(seq, "removed", f"the anchor's row {seq} is gone: the record was cut back to {rows} rows")
    if hashes[seq] != digest.lower():
        return Problem(seq, "changed", "the ledger differs from the anchor: the record up to it was rewritten")
    return None


def _witness_marks(store: RecordStore, key: SiteKey | None) -> tuple[list[Any], list[str]]:
    """The witness marks of this database beside the site key (read before the snapshot: they never run ahead)."""
    from fillfinish.record.witness import database_identity, read_marks

    path = store.key_path
    if path is None:
        return [], []
    try:
        return read_marks(path, database_identity(store._raw_url))  # noqa: SLF001
    except OSError as exc:
        return [], [f"witness files beside {path} cannot be read: {exc}"]


def _combine_ledger(store: RecordStore, lines: dict[str, _LineResult], key: SiteKey | None, key_problem: str | None,
                    marks: list[Any], witness_notes: list[str], anchor: tuple[int, str] | None) -> LedgerResult:
    """One LedgerResult from the per-line results, the witnesses and the anchor."""
    own = store.line_id
    heads = {line: result.head for line, result in lines.items() if result.head is not None}
    head = heads.get(own) or (next(iter(heads.values())) if len(heads) == 1 else None)
    rows = sum(result.rows for result in lines.values())
    problem: Problem | None = None
    problem_line: str | None = None
    for line, result in lines.items():
        if result.problem is not None:
            problem, problem_line = result.problem, line
            break
    notes: list[str] = list(witness_notes)
    unchecked: list[str] = []
    legacy = sum(result.legacy_rows for result in lines.values())
    if legacy:
        notes.append(f"{legacy} ledger rows written before the site key was introduced carry no MAC")
    if key is None:
        why = key_problem or (f"no site key at {store.key_path}" if store.key_path else "no site key")
        unchecked.append(f"{why}: ledger MACs, signature proofs and the witness of the newest rows were not checked "
                         "(rows appended, recomputed or cut off by someone with database access would not be seen; "
                         "give --key FILE or $FILLFINISH_SITE_KEY)")
    else:
        seen = set()
        for mark in marks:
            seen.add(mark.line_id)
            if problem is not None:
                break
            line_result = lines.get(mark.line_id)
            found = _row_hash(store, mark.line_id, mark.line_seq)
            if found is None:
                have = line_result.head[0] if line_result and line_result.head else 0
                problem, problem_line = Problem(mark.line_seq, "removed", f"the newest rows of line {mark.line_id} "
                                                f"were cut off: the witness beside the site key holds row "
                                                f"{mark.line_seq}, the ledger ends at {have}"), mark.line_id
            elif found != mark.hash:
                problem, problem_line = Problem(mark.line_seq, "changed", f"row {mark.line_seq} of line "
                                                f"{mark.line_id} differs from the witness beside the site key"), \
                    mark.line_id
        missing = sorted(set(lines) - seen)
        if missing:
            notes.append(f"no witness here for line(s) {', '.join(missing)}: their newest rows are checked only on "
                         "the line PC that writes them (or against an --anchor)")
    if problem is None and anchor is not None:
        own_line = own if own in lines else (next(iter(lines)) if len(lines) == 1 else own)
        found = _row_hash(store, own_line, anchor[0])
        problem = _anchor_problem(anchor, {} if found is None else {anchor[0]: found},
                                  lines[own_line].rows if own_line in lines else 0)
        problem_line = own_line
    return LedgerResult(problem is None, rows, head, problem, problem_line, heads, key is not None,
                        tuple(unchecked), tuple(notes))


def _row_hash(store: RecordStore, line: str, line_seq: int) -> str | None:
    """The hash of ledger row (line, line_seq), or None when there is none (read after the snapshot: rows only grow)."""
    fairy = store.engine.raw_connection()
    try:
        rows = _fetchall(fairy.driver_connection, store.dialect,
                         "SELECT hash FROM ledger WHERE line_id = ? AND line_seq = ?", (line, line_seq))
        fairy.driver_connection.rollback()
    finally:
        fairy.close()
    return str(rows[0][0]) if rows else None


# --------------------------------------------------------------------------------------------------- parallel
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


def _batch_task(url: str, dialect: str, secret: bytes | None, ids: list[str]) -> list[BatchResult]:
    """Worker: check the batches ids[0]..ids[-1]."""
    conn = _connect(url, dialect)
    key = SiteKey(secret, None) if secret is not None else None
    try:
        return _check_batches(conn, dialect, key, ids, None, ranged=True)
    finally:
        _release()


def _line_task(url: str, dialect: str, secret: bytes | None, line: str, lo: int, hi: int | None) -> _LineResult:
    """Worker: check rows lo..hi of one line's ledger."""
    conn = _connect(url, dialect)
    key = SiteKey(secret, None) if secret is not None else None
    try:
        return _check_line(conn, dialect, key, line, lo, hi)
    finally:
        _release()


def _parallel(url: str, dialect: str, key: SiteKey | None, ids: list[str], lines: list[tuple[str, int]],
              jobs: int) -> tuple[list[BatchResult], dict[str, _LineResult]]:
    """Split the batches and each line's ledger into ranges and check them in `jobs` worker processes."""
    import multiprocessing

    secret = key.secret if key is not None else None
    parts = max(2, jobs * 2)
    size = max(1, -(-len(ids) // parts))
    batch_chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
    line_chunks: list[tuple[str, int, int | None]] = []
    for line, count in lines:
        step = max(50_000, -(-count // parts))
        starts = list(range(1, count + 1, step)) or [1]
        for n, start in enumerate(starts):
            line_chunks.append((line, start, None if n == len(starts) - 1 else start + step - 1))
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        batch_futures = [pool.submit(_batch_task, url, dialect, secret, chunk) for chunk in batch_chunks]
        line_futures = [(line, pool.submit(_line_task, url, dialect, secret, line, lo, hi))
                        for line, lo, hi in line_chunks]
        results = [result for future in batch_futures for result in future.result()]
        merged: dict[str, _LineResult] = {}
        for line, future in line_futures:
            part = future.result()
            if line not in merged:
                merged[line] = part
                continue
            whole = merged[line]
            whole.rows += part.rows
            whole.keyed_rows += part.keyed_rows
            whole.legacy_rows += part.legacy_rows
            whole.head = part.head or whole.head
            whole.problem = whole.problem or part.problem
    return results, merged


Checker = Callable[[Any], None]
