"""The ledger walked in table order: every line's chain checked from one sequential scan (or ranges of it).

A line's rows are written in line_seq order, so in global_seq order (the table's own order, a sequential read
instead of an index walk) each line's rows normally follow each other 1, 2, 3, ... Each range of the scan keeps,
per line, a span: its first row's (line_seq, prev_hash), its last row's (line_seq, hash), and whether every row
passed the full check of a keyed row (link, hash, key id, MAC). Spans that pass and link up from line_seq 1 make the
line intact; any other line is walked again in line_seq order by verify_ledger._check_line, which names the first
problem exactly as before (decision 0018).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from fillfinish.record.chain import GENESIS_LEDGER_HASH, json_string
from fillfinish.record.sitekey import SiteKey
from fillfinish.record.verify_ledger import _check_line, _hmac_pads, _LineResult
from fillfinish.record.verify_rows import _LEDGER_SQL, _fetchall, _stream


_NO_LINE: Any = object()


@dataclass(slots=True)
class Span:
    """One line's rows within one range of the scan."""

    line: str
    first_seq: Any
    first_prev: str
    expected: Any
    prev: str
    rows: int = 0
    ok: bool = True


def scan_ledger(conn: Any, dialect: str, key: SiteKey | None, lo: int | None = None, hi: int | None = None
                ) -> dict[Any, Span]:
    """Read ledger rows lo..hi (global_seq, None: open) in global_seq order; return each line's span."""
    pads = _hmac_pads(key.secret) if key is not None else None
    fingerprint = key.fingerprint if key is not None else ""
    names: dict[Any, str] = {}
    spans: dict[Any, Span] = {}
    where, params = [], []
    if lo is not None:
        where.append("global_seq >= ?")
        params.append(lo)
    if hi is not None:
        where.append("global_seq <= ?")
        params.append(hi)
    sql = f"{_LEDGER_SQL} {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY global_seq"
    span = Span(_NO_LINE, None, "", None, "", ok=False)  # no line_id is this object: the first row looks its line up
    for raw in _stream(conn, dialect, sql, params):
        _global, bid, seq, record_hash, prev_hash, digest, line, line_seq, key_id, mac = raw
        if line != span.line:
            span = spans.get(line) or spans.setdefault(line, Span(line, line_seq, prev_hash, line_seq, prev_hash))
        span.rows += 1
        if not span.ok:
            continue
        # fast_row_ok inlined (the same checks, in the same order): this loop runs once per ledger row
        if line_seq != span.expected or prev_hash != span.prev or mac is None or (
                pads is not None and key_id != fingerprint):
            span.ok = False
            continue
        try:
            bid_json = names.get(bid) or names.setdefault(bid, json_string(bid))
            line_json = names.get(line) or names.setdefault(line, json_string(line))
            body = (f'{prev_hash}{{"batch_id":{bid_json},"line_id":{line_json},"line_seq":{int(line_seq)},'
                    f'"record_hash":{json_string(record_hash)},"seq":{int(seq)}}}')
            if sha256(body.encode("utf-8")).hexdigest() != digest:
                span.ok = False
                continue
            if pads is not None:
                inner, outer = pads[0].copy(), pads[1].copy()
                inner.update(f"ledger/1\x1f{line}\x1f{line_seq}\x1f{digest}\x1f{key_id}".encode("utf-8"))
                outer.update(inner.digest())
                if outer.hexdigest() != mac:
                    span.ok = False
                    continue
        except (TypeError, ValueError):
            span.ok = False
            continue
        span.expected, span.prev = line_seq + 1, digest
    return spans


def global_ranges(conn: Any, dialect: str, parts: int) -> list[tuple[int, int]]:
    """The ledger's global_seq span cut into `parts` contiguous ranges (empty ledger: none)."""
    # two subqueries: each reads one end of the key (MIN and MAX in one SELECT made SQLite scan the whole ledger)
    low, high = _fetchall(conn, dialect, "SELECT (SELECT MIN(global_seq) FROM ledger), "
                          "(SELECT MAX(global_seq) FROM ledger)", ())[0]
    if low is None:
        return []
    step = max(1, -(-(int(high) - int(low) + 1) // parts))
    return [(start, min(start + step - 1, int(high))) for start in range(int(low), int(high) + 1, step)]


def merge_spans(lines: Iterable[Any], parts: list[dict[Any, Span]]) -> tuple[dict[Any, _LineResult], list[Any]]:
    """Per line: an intact _LineResult when its spans (in range order) all passed and link up from line_seq 1;
    otherwise the line is returned in the second list, to be walked again in line_seq order."""
    results: dict[Any, _LineResult] = {}
    again: list[Any] = []
    for line in lines:
        spans = [part[line] for part in parts if line in part]
        prev_seq, prev_hash, ok = 0, GENESIS_LEDGER_HASH, isinstance(line, str) and bool(spans)
        for span in spans if ok else ():
            if not span.ok or span.first_seq != prev_seq + 1 or span.first_prev != prev_hash:
                ok = False
                break
            prev_seq, prev_hash = span.expected - 1, span.prev
        if not ok:
            again.append(line)
            continue
        rows = sum(span.rows for span in spans)
        results[line] = _LineResult(line, rows, (prev_seq, prev_hash), None, rows, 0, {})
    return results, again


def check_lines(conn: Any, dialect: str, key: SiteKey | None, lines: list[Any], parts: list[dict[Any, Span]]
                ) -> dict[Any, _LineResult]:
    """Every line's result, in the order of `lines`: from the scan's spans, or walked again in line_seq order on
    `conn` where the spans did not pass (that walk names the first problem)."""
    passed, again = merge_spans(lines, parts)
    for line in again:
        passed[line] = _check_line(conn, dialect, key, line, 1, None)
    return {line: passed[line] for line in lines}
