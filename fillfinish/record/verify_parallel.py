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
from fillfinish.record.verify_ledger import _check_line, _LineResult
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
