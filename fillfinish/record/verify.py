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

from typing import Any

from fillfinish.record.errors import UnknownBatchError
from fillfinish.record.sitekey import SiteKeyError
from fillfinish.record.verify_batches import SIGNATURE_KIND, _check_batches, check_batch, signature_problem
from fillfinish.record.verify_ledger import _combine_ledger, _witness_marks, check_ledger
from fillfinish.record.verify_parallel import check_whole
from fillfinish.record.verify_report import PROBLEM_KINDS, BatchResult, LedgerResult, Problem, VerifyReport
from fillfinish.record.verify_rows import _batch_ids, _count, _line_ids, _nothing, _snapshot
from fillfinish.record.verify_scan import check_lines, scan_ledger

__all__ = ["PROBLEM_KINDS", "SIGNATURE_KIND", "BatchResult", "LedgerResult", "Problem", "VerifyReport", "check_batch",
           "check_ledger", "signature_problem", "verify"]

PARALLEL_MIN_ROWS = 200_000
"""Below this many ledger rows `jobs` > 1 is not worth starting processes for."""


def verify(store: Any, batch_id: str | None = None, *, anchor: tuple[int, str] | None = None,
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
        names = _line_ids(conn, dialect)
        if batch_id is None:  # the batch ids come with the pass (every batch named by a header or a row)
            parallel = jobs > 1 and _count(conn, dialect, "ledger") >= PARALLEL_MIN_ROWS
            results, line_results = check_whole(conn, url, dialect, key, names, jobs if parallel else 1)
        else:
            ids = _batch_ids(conn, dialect, batch_id)
            if not ids:
                raise UnknownBatchError(f"unknown batch {batch_id!r} in {store.url}")
            results = _check_batches(conn, dialect, key, ids, batch_id)
            line_results = check_lines(conn, dialect, key, names, [scan_ledger(conn, dialect, key)] if names else [])
    with store._lock if _shared(store) else _nothing():  # noqa: SLF001
        ledger = _combine_ledger(store, line_results, key, key_problem, marks, witness_notes, anchor)
    report = VerifyReport(batches=results, ledger=ledger)
    if accounts and batch_id is None:
        report = _with_accounts(store, report)
    return report


def _with_accounts(store: Any, report: VerifyReport) -> VerifyReport:
    """Add the check of the accounts against their keyed trail (fillfinish.people.trail), when that module exists."""
    try:
        from fillfinish.people.trail import check_accounts
    except ImportError:  # pragma: no cover - the people package is part of fillfinish
        return report
    return VerifyReport(batches=report.batches, ledger=report.ledger, accounts=check_accounts(store))


def _shared(store: Any) -> bool:
    """True when the store's pool has one connection for everything (in-memory SQLite): hold its lock meanwhile."""
    from sqlalchemy.pool import StaticPool

    return isinstance(store.engine.pool, StaticPool)
