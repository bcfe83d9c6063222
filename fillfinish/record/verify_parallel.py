"""`record verify --jobs N`: the batches and each line's ledger split into ranges, checked in N worker processes.

Each worker opens its own read-only snapshot (never a connection inherited from the parent) and returns plain
results; the parent merges them. Batch ranges are contiguous runs of the database's batch order; ledger ranges are
line_seq ranges seeded by the row before, so every link is still checked.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

from fillfinish.record.sitekey import SiteKey
from fillfinish.record.verify_batches import _check_batches
from fillfinish.record.verify_ledger import _LineResult
from fillfinish.record.verify_scan import Span, check_lines, global_ranges, scan_ledger
from fillfinish.record.verify_report import BatchResult
from fillfinish.record.verify_rows import _connect, _release


def _batch_task(url: str, dialect: str, secret: bytes | None, ids: list[str]) -> list[BatchResult]:
    """Worker: check the batches ids[0]..ids[-1]."""
    conn = _connect(url, dialect)
    key = SiteKey(secret, None) if secret is not None else None
    try:
        return _check_batches(conn, dialect, key, ids, None, ranged=True)
    finally:
        _release()


def _scan_task(url: str, dialect: str, secret: bytes | None, lo: int, hi: int) -> dict[Any, Span]:
    """Worker: scan ledger rows lo..hi (global_seq) and return each line's span."""
    conn = _connect(url, dialect)
    key = SiteKey(secret, None) if secret is not None else None
    try:
        return scan_ledger(conn, dialect, key, lo, hi)
    finally:
        _release()


def _parallel(conn: Any, url: str, dialect: str, key: SiteKey | None, ids: list[str], lines: list[Any],
              jobs: int) -> tuple[list[BatchResult], dict[Any, _LineResult]]:
    """Split the batches and the ledger's table order into ranges and check them in `jobs` worker processes; lines
    whose spans do not pass are walked again here, on the parent's snapshot `conn`."""
    import multiprocessing

    secret = key.secret if key is not None else None
    parts = max(2, jobs * 4)  # several ranges a worker: the last range does not run alone for long
    size = max(1, -(-len(ids) // parts))
    batch_chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
    ranges = global_ranges(conn, dialect, parts)
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        scan_futures = [pool.submit(_scan_task, url, dialect, secret, lo, hi) for lo, hi in ranges]
        batch_futures = [pool.submit(_batch_task, url, dialect, secret, chunk) for chunk in batch_chunks]
        spans = [future.result() for future in scan_futures]
        results = [result for future in batch_futures for result in future.result()]
    return results, check_lines(conn, dialect, key, lines, spans)
