"""Verification of the batch record (21 CFR 11.10(a)): tell an altered record from a true one, from the rows alone.

It reads the raw rows (it does not trust triggers, constraints or the ORM), recomputes every header, entry and ledger
hash and walks the per-batch chains and the global ledger chain, reporting per batch the FIRST problem with its seq
and a kind: "changed", "inserted", "removed", "reordered" or "header changed". What it can and cannot detect is
written down in docs/record.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from fillfinish.record.chain import GENESIS_LEDGER_HASH, HEADER_FIELDS, entry_hash, header_hash, ledger_hash
from fillfinish.record.models import BatchRow, EntryRow, LedgerRow
from fillfinish.record.store import UnknownBatchError
from fillfinish.record.tombstones import check_purged, load_tombstones, purged_line

if TYPE_CHECKING:
    from fillfinish.record.store import RecordStore

PROBLEM_KINDS: tuple[str, ...] = ("changed", "inserted", "removed", "reordered", "header changed")
"""The kinds of problem verify names."""

BATCH = BatchRow.__table__
ENTRY = EntryRow.__table__
LEDGER = LedgerRow.__table__


@dataclass(frozen=True)
class Problem:
    """The first thing found wrong: at which seq (0 = the header; global_seq for the ledger), what kind, and why."""

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
    """Verification of one batch: ok, how many entries were checked, the first problem if any."""

    batch_id: str
    ok: bool
    entries_checked: int
    problem: Problem | None = None
    note: str | None = None  # e.g. how a purged batch is shown (fillfinish.record.tombstones)


@dataclass(frozen=True)
class LedgerResult:
    """Verification of the global ledger chain (all batches, write order) and of an optional external anchor."""

    ok: bool
    rows_checked: int
    head: tuple[int, str] | None
    problem: Problem | None = None


@dataclass(frozen=True)
class VerifyReport:
    """Result of verify(): one BatchResult per batch checked plus the ledger result; ok only if all are ok."""

    batches: list[BatchResult]
    ledger: LedgerResult

    @property
    def ok(self) -> bool:
        """True when every batch and the ledger verified."""
        return self.ledger.ok and all(result.ok for result in self.batches)

    def result(self, batch_id: str) -> BatchResult:
        """The result of one batch (KeyError if it was not checked)."""
        for result in self.batches:
            if result.batch_id == batch_id:
                return result
        raise KeyError(batch_id)

    def lines(self) -> list[str]:
        """Human-readable lines: one per batch, one for the ledger."""
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
        if led.ok:
            out.append(f"ledger: intact ({led.rows_checked} rows, {head})")
        else:
            assert led.problem is not None
            out.append(f"ledger: NOT INTACT: {led.problem.describe('row')} ({head})")
        return out


def verify(store: RecordStore, batch_id: str | None = None, *, anchor: tuple[int, str] | None = None) -> VerifyReport:
    """Verify one batch (or all) and the global ledger; `anchor` = (global_seq, hash) noted earlier outside the DB.

    Raises UnknownBatchError when `batch_id` is named nowhere in the record (no header, entry or ledger row).
    """
    with store._read() as conn:  # noqa: SLF001 - verify is part of the record package
        batch_q = select(BATCH)
        entry_q = select(ENTRY).order_by(ENTRY.c.batch_id, ENTRY.c.seq, ENTRY.c.id)
        if batch_id is not None:
            batch_q = batch_q.where(BATCH.c.batch_id == batch_id)
            entry_q = entry_q.where(ENTRY.c.batch_id == batch_id)
        headers = {row.batch_id: row for row in conn.execute(batch_q).all()}
        entry_rows = conn.execute(entry_q).all()
        ledger_rows = conn.execute(select(LEDGER).order_by(LEDGER.c.global_seq)).all()
        tombstones = load_tombstones(conn)

    by_batch: dict[str, list[Any]] = {}
    for row in entry_rows:
        by_batch.setdefault(row.batch_id, []).append(row)
    ledger_by_batch: dict[str, list[Any]] = {}
    for row in ledger_rows:
        if batch_id is None or row.batch_id == batch_id:
            ledger_by_batch.setdefault(row.batch_id, []).append(row)
    ids = sorted(set(headers) | set(by_batch) | set(ledger_by_batch))
    if batch_id is not None and not ids:
        raise UnknownBatchError(f"unknown batch {batch_id!r} in {store.url}")
    results = [
        _purged_or_checked(bid, tombstones.get(bid), headers.get(bid), by_batch.get(bid, []),
                           ledger_by_batch.get(bid, []))
        for bid in ids
    ]
    return VerifyReport(batches=results, ledger=check_ledger(ledger_rows, anchor))


def _purged_or_checked(batch_id: str, tombstone: dict[str, Any] | None, header: Any, entries: Sequence[Any],
                       ledger: Sequence[Any]) -> BatchResult:
    """A batch purged under a matching tombstone is ok with a note (fillfinish.record.tombstones); else check_batch."""
    if tombstone is not None and header is None and check_purged(tombstone, header, entries, ledger) is None:
        return BatchResult(batch_id, True, 0, note=purged_line(tombstone))
    return check_batch(batch_id, header, entries, ledger)


def _recompute_header(header: Any) -> str | None:
    """The header hash recomputed from a batch row, or None when its stored fields are not even readable."""
    try:
        fields = {name: getattr(header, name) for name in HEADER_FIELDS}
        fields["site_config"] = json.loads(header.site_config)
        return header_hash(fields)
    except (ValueError, TypeError):
        return None


def _recompute_entry(row: Any) -> str | None:
    """The entry hash recomputed from an entry row, or None when its data is not readable JSON."""
    try:
        data = json.loads(row.data)
        return entry_hash(row.prev_hash, batch_id=row.batch_id, seq=row.seq, ts=row.ts, kind=row.kind,
                          actor=row.actor, data=data)
    except (ValueError, TypeError):
        return None


def check_batch(batch_id: str, header: Any, entries: Sequence[Any], ledger: Sequence[Any]) -> BatchResult:
    """Verify one batch from its raw header row, entry rows (seq order) and ledger rows; first problem wins."""
    checked = len(entries)

    def bad(problem: Problem) -> BatchResult:
        """The failed result of this batch."""
        return BatchResult(batch_id, False, checked, problem)

    logged = {row.seq: row.record_hash for row in ledger}
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
    for i, row in enumerate(entries):
        if row.seq < expected:
            return bad(Problem(row.seq, "inserted", f"a second entry with seq {row.seq}", row.kind))
        if row.seq > expected:
            missing = f"{expected}" if row.seq == expected + 1 else f"{expected}..{row.seq - 1}"
            return bad(Problem(expected, "removed", f"entries {missing} are missing (gap before seq {row.seq})"))
        if row.prev_hash != prev:
            before_prev = header.header_hash if i == 1 else entries[i - 2].hash if i >= 2 else None
            if before_prev is not None and row.prev_hash == before_prev:
                return bad(Problem(row.seq - 1, "inserted", f"entry {row.seq} links past it to entry {row.seq - 2}",
                                   entries[i - 1].kind))
            if row.prev_hash in by_hash:
                other = by_hash[row.prev_hash].seq
                return bad(Problem(row.seq, "reordered", f"it links to entry {other}, not to entry {row.seq - 1}",
                                   row.kind))
            return bad(Problem(row.seq, "removed",
                               f"chain break: it does not link to entry {row.seq - 1} (an entry before it was removed "
                               "or the chain rewritten)", row.kind))
        if _recompute_entry(row) != row.hash:
            return bad(Problem(row.seq, "changed", "its content (ts, kind, actor or data) does not match its hash",
                               row.kind))
        original = logged.get(row.seq)
        if original != row.hash:
            if original is not None and original not in by_hash:
                return bad(Problem(row.seq, "changed",
                                   "rewritten with a recomputed hash: the ledger holds a different original", row.kind))
            return bad(Problem(row.seq, "inserted", "it is not in the ledger (not written by the record store)",
                               row.kind))
        prev = row.hash
        expected += 1
    tail = sorted(seq for seq in logged if seq >= expected)
    if tail:
        span = f"{tail[0]}" if len(tail) == 1 else f"{tail[0]}..{tail[-1]}"
        return bad(Problem(tail[0], "removed", f"entries {span} were removed from the end (the ledger still lists them)"))
    return BatchResult(batch_id, True, checked)


def check_ledger(rows: Sequence[Any], anchor: tuple[int, str] | None = None) -> LedgerResult:
    """Verify the global ledger chain (rows in global_seq order) and, if given, that it still holds `anchor`."""
    head = (rows[-1].global_seq, rows[-1].hash) if rows else None

    def bad(problem: Problem) -> LedgerResult:
        """The failed result of the ledger."""
        return LedgerResult(False, len(rows), head, problem)

    prev = GENESIS_LEDGER_HASH
    expected = 1
    for i, row in enumerate(rows):
        if row.global_seq < expected:
            return bad(Problem(row.global_seq, "inserted", f"a second row with global_seq {row.global_seq}"))
        if row.global_seq > expected:
            return bad(Problem(expected, "removed",
                               f"rows {expected}..{row.global_seq - 1} are missing (records of some batch were removed)"))
        if row.prev_hash != prev:
            before_prev = GENESIS_LEDGER_HASH if i == 1 else rows[i - 2].hash if i >= 2 else None
            if before_prev is not None and row.prev_hash == before_prev:
                return bad(Problem(row.global_seq - 1, "inserted", f"row {row.global_seq} links past it"))
            return bad(Problem(row.global_seq, "removed", "chain break: it does not link to the row before it"))
        recomputed = ledger_hash(row.prev_hash, global_seq=row.global_seq, batch_id=row.batch_id, seq=row.seq,
                                 record_hash=row.record_hash)
        if recomputed != row.hash:
            return bad(Problem(row.global_seq, "changed", "its content does not match its hash"))
        prev = row.hash
        expected += 1
    if anchor is not None:
        gseq, ghash = anchor
        if gseq < 1:
            return bad(Problem(gseq, "removed", "an anchor's global_seq starts at 1"))
        if gseq > len(rows):
            return bad(Problem(gseq, "removed", f"the anchor's row {gseq} is gone: the record was cut back to "
                                                f"{len(rows)} rows"))
        if rows[gseq - 1].hash != ghash.lower():
            return bad(Problem(gseq, "changed", "the ledger differs from the anchor: the record up to it was rewritten"))
    return LedgerResult(True, len(rows), head)
