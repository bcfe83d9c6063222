"""`record verify` over the whole record: the one-pass check (verify_onepass) of global_seq ranges, in this process
or in N worker processes, joined with the headers and row counts, and the full check wherever that did not pass.

Each worker opens its own read-only snapshot (never a connection inherited from the parent) and returns plain spans;
the parent reads the headers and counts meanwhile, joins the spans, and walks again (full check, on its own snapshot)
each batch and line whose spans do not show it intact.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Any

from fillfinish.record.sitekey import SiteKey
from fillfinish.record.verify_batches import check_named
from fillfinish.record.verify_ledger import _LineResult
from fillfinish.record.verify_onepass import (RangeScan, joined_entries, read_facts, scan_range, settle_counts,
                                              signatures_ok)
from fillfinish.record.verify_report import BatchResult
from fillfinish.record.verify_rows import _connect, _release
from fillfinish.record.verify_scan import check_lines, global_ranges


def _range_task(url: str, dialect: str, secret: bytes | None, lo: int, hi: int) -> RangeScan:
    """Worker: the one-pass check of global_seq lo..hi."""
    conn = _connect(url, dialect)
    key = SiteKey(secret, None) if secret is not None else None
    try:
        return scan_range(conn, dialect, key, lo, hi)
    finally:
        _release()


def check_whole(conn: Any, url: str, dialect: str, key: SiteKey | None, lines: list[Any],
                jobs: int) -> tuple[list[BatchResult], dict[Any, _LineResult]]:
    """Every batch's (in batch id order) and every line's result: the one-pass check of the ledger's global_seq span
    (cut in ranges over `jobs` worker processes when jobs > 1), then the full check of what it could not show intact,
    on `conn`."""
    ranges = global_ranges(conn, dialect, 1 if jobs <= 1 else jobs * 4)  # several ranges a worker: no long tail
    if jobs <= 1 or len(ranges) <= 1:
        parts = [scan_range(conn, dialect, key, lo, hi) for lo, hi in ranges]
        facts = read_facts(conn, dialect)
    else:
        import multiprocessing

        secret = key.secret if key is not None else None
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = [pool.submit(_range_task, url, dialect, secret, lo, hi) for lo, hi in ranges]
            facts = read_facts(conn, dialect)  # the parent's share while the workers run
            parts = [future.result() for future in futures]
    ids = settle_counts(conn, dialect, parts, facts)
    found: dict[str, BatchResult] = {}
    again: list[str] = []
    signed: dict[Any, list[tuple[Any, ...]]] = {}
    for part in parts:
        for row in part.signatures:
            signed.setdefault(row[1], []).append(row)
    for bid in ids:
        entries = joined_entries(bid, parts, facts)
        if entries is None or (bid in signed and not signatures_ok(conn, dialect, key, signed[bid],
                                                                    facts.headers[bid])):
            again.append(bid)
        else:
            found[bid] = BatchResult(bid, True, entries)
    found.update(check_named(conn, dialect, key, again))
    return [found[bid] for bid in ids], check_lines(conn, dialect, key, lines, [part.lines for part in parts])
