"""The ledger check of `record verify`: each line's ledger chain (links, hashes, MACs), witnesses and anchors.

Each line's rows are walked in line_seq order from one stream (or, with worker processes, in line_seq ranges seeded
by the row before). Keyed rows that pass take a fast path over the plain row; any other row goes through the full
check, which names the first problem.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from fillfinish.record.chain import GENESIS_LEDGER_HASH, json_string, ledger_hash, line_ledger_hash
from fillfinish.record.sitekey import SiteKey
from fillfinish.record.sitekey import hmac_pads as _hmac_pads
from fillfinish.record.verify_report import LedgerResult, Problem
from fillfinish.record.verify_rows import _LEDGER_SQL, _fetchall, _Ledger, _stream

def _hmac_hex(pads: tuple[Any, Any], message: str) -> str:
    """HMAC-SHA256 of `message` (UTF-8) as 64 hex digits, from precomputed pads (same value as hmac.new)."""
    inner, outer = pads[0].copy(), pads[1].copy()
    inner.update(message.encode("utf-8"))
    outer.update(inner.digest())
    return outer.hexdigest()


def fast_row_ok(raw: tuple[Any, ...], expected: Any, prev: str, pads: tuple[Any, Any] | None, fingerprint: str,
                names: dict[Any, str]) -> bool:
    """True when a ledger row (_LEDGER_SQL columns) is the next keyed row after (`expected`, `prev`): link, line hash
    (chain.line_ledger_hash) and, with the key's `pads`, key id and MAC (sitekey.ledger_mac_message) all match."""
    _global, bid, seq, record_hash, prev_hash, digest, line, line_seq, key_id, mac = raw
    if line_seq != expected or prev_hash != prev or mac is None or (pads is not None and key_id != fingerprint):
        return False
    try:
        bid_json = names.get(bid) or names.setdefault(bid, json_string(bid))
        line_json = names.get(line) or names.setdefault(line, json_string(line))
        body = (f'{prev_hash}{{"batch_id":{bid_json},"line_id":{line_json},"line_seq":{int(line_seq)},'
                f'"record_hash":{json_string(record_hash)},"seq":{int(seq)}}}')
        return bool(sha256(body.encode("utf-8")).hexdigest() == digest and (
            pads is None or _hmac_hex(pads, f"ledger/1\x1f{line}\x1f{line_seq}\x1f{digest}\x1f{key_id}") == mac))
    except (TypeError, ValueError):
        return False


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

    def feed_all(self, rows: Iterator[tuple[Any, ...]]) -> None:
        """Check rows in line_seq order: keyed rows that pass every check take a fast path over the plain tuple
        (fast_row_ok); any other row goes through feed()."""
        pads = _hmac_pads(self.key.secret) if self.key is not None else None
        fingerprint = self._fingerprint
        names: dict[Any, str] = {}
        expected, prev, before, last_seq, fast = self.expected, self.prev, self._before_prev, None, 0
        for raw in rows:
            if self.problem is None:
                if fast_row_ok(raw, expected, prev, pads, fingerprint, names):
                    fast += 1
                    before, prev, last_seq, expected = prev, raw[5], raw[7], raw[7] + 1
                    continue
                self._sync(fast, expected, prev, before, last_seq)
                fast = 0
            self.feed(_Ledger._make(raw))
            expected, prev, before = self.expected, self.prev, self._before_prev
        self._sync(fast, expected, prev, before, last_seq)

    def _sync(self, fast: int, expected: int, prev: str, before: str | None, last_seq: Any) -> None:
        """Bring the checker's state up to the `fast` rows feed_all passed since the last slow row."""
        if not fast:
            return
        self.rows += fast
        self.keyed_rows += fast
        self.keyed = True
        self._before_prev, self.prev, self.expected = before, prev, expected
        self.head = (last_seq, prev)

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
            if not self.key.check(f"ledger/1\x1f{row.line_id}\x1f{seq}\x1f{row.hash}\x1f{row.key_id}", row.mac):
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
    rows = _stream(conn, dialect, f"{_LEDGER_SQL} {where} ORDER BY line_seq", params)
    if want:
        for raw in rows:
            row = _Ledger._make(raw)
            checker.feed(row)
            if row.line_seq in want:
                hashes[row.line_seq] = row.hash
    else:
        checker.feed_all(rows)
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


def _witness_marks(store: Any, key: SiteKey | None) -> tuple[list[Any], list[str]]:
    """The witness marks of this database beside the site key (read before the snapshot: they never run ahead)."""
    from fillfinish.record.witness import database_identity, read_marks

    path = store.key_path
    if path is None:
        return [], []
    try:
        return read_marks(path, database_identity(store._raw_url))  # noqa: SLF001
    except OSError as exc:
        return [], [f"witness files beside {path} cannot be read: {exc}"]


def _combine_ledger(store: Any, lines: dict[str, _LineResult], key: SiteKey | None, key_problem: str | None,
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


def _row_hash(store: Any, line: str, line_seq: int) -> str | None:
    """The hash of ledger row (line, line_seq), or None when there is none (read after the snapshot: rows only grow)."""
    fairy = store.engine.raw_connection()
    try:
        rows = _fetchall(fairy.driver_connection, store.dialect,
                         "SELECT hash FROM ledger WHERE line_id = ? AND line_seq = ?", (line, line_seq))
        fairy.driver_connection.rollback()
    finally:
        fairy.close()
    return str(rows[0][0]) if rows else None
