"""Entries and ledger checked in one pass in table order (decision 0024): each ledger row with the entry it logs.

A range of global_seq is read as one stream, each ledger row joined with the entry row of the same global_seq
(ORDER BY global_seq; the database compares the columns both rows hold): every ledger row's line chain is checked as
in verify_scan (link, hash, key id, MAC) and every entry row with the same global_seq is checked against it (same
batch and seq, its hash is the ledger's record hash, its link, its own hash, canonical data). Per batch and per line
the range keeps a span (first link, last hash, all passed?); the parent joins the spans of all ranges, checks the
headers and the per-batch row counts, and sends every batch or line whose spans do not pass to the full check, which
names the first problem. The fast path only ever says "intact".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from fillfinish.record.chain import json_string
from fillfinish.record.sitekey import SiteKey
from fillfinish.record.verify_canon import CanonicalShapes
from fillfinish.record.verify_rows import _stream
from fillfinish.record.verify_scan import _NO_LINE, Span

SIGNATURE_KIND = "signature"
_PAIRED_SQL = (
    "SELECT l.global_seq, l.batch_id, l.seq, l.record_hash, l.prev_hash, l.hash, l.line_id, l.line_seq, l.key_id, "
    "l.mac, CASE WHEN e.global_seq IS NULL THEN 0 WHEN e.batch_id = l.batch_id AND e.seq = l.seq "
    "AND e.hash = l.record_hash THEN 1 ELSE 2 END, e.ts, e.kind, e.actor, e.data, e.prev_hash "
    "FROM ledger l LEFT JOIN entry e ON e.global_seq = l.global_seq "
    "WHERE l.global_seq >= ? AND l.global_seq <= ? ORDER BY l.global_seq")
"""Each ledger row of a range with the entry row of the same global_seq, in one stream. Column 10 says how they pair:
0 no entry row, 1 the entry row this ledger row logs (same batch, seq and hash; compared in the database, so those
three are not read twice), 2 another entry row (its batch, seq or hash differ: the batch cannot pass here).
Entry rows no ledger row names are not read; their batch's entry count then does not match."""
NO_ENTRY, LOGGED, OTHER = 0, 1, 2


@dataclass(slots=True)
class BatchSpan:
    """One batch's rows within one range: ledger rows seq first_seq.. in order, each entry paired and passing."""

    batch: Any
    first_seq: Any
    first_prev: Any  # the first entry's prev_hash; None when the span starts at the header row (seq 0)
    expected: Any
    prev: Any
    header: Any = None  # record_hash of the header's ledger row (seq 0), when in this range
    rows: int = 0  # ledger rows
    entries: int = 0  # entries paired with one of those rows
    ok: bool = True


@dataclass(slots=True)
class RangeScan:
    """What one range of the pass found: each line's span, each batch's span, and the signature entries to check."""

    lines: dict[Any, Span] = field(default_factory=dict)
    batches: dict[Any, BatchSpan] = field(default_factory=dict)
    signatures: list[tuple[Any, ...]] = field(default_factory=list)  # entry rows (_ENTRY_COLUMNS)


_ENTRY_COLUMNS = ("global_seq", "batch_id", "seq", "ts", "kind", "actor", "data", "prev_hash", "hash")
"""The columns of a signature entry row kept for signatures_ok, in this order."""


def scan_range(conn: Any, dialect: str, key: SiteKey | None, lo: int, hi: int) -> RangeScan:
    """Check ledger rows and entry rows with global_seq lo..hi in one pass; return the spans (see the module doc).
    This loop is most of verify's time, so its state lives in locals (written back when the line or batch changes);
    a row that does not pass only ends its span's fast path (the full check names the problem)."""
    pads = key.pads if key is not None else None
    fingerprint = key.fingerprint if key is not None else ""
    out = RangeScan()
    lines, batches, signatures = out.lines, out.batches, out.signatures
    names: dict[Any, str] = {}  # actor and kind -> its JSON string
    canonical = CanonicalShapes().is_canonical
    line_span = Span(_NO_LINE, None, "", None, "", ok=False)  # a placeholder no line_id is
    l_cur, l_ok, l_exp, l_prev, l_rows, l_json = _NO_LINE, False, None, "", 0, ""
    batch_span = BatchSpan(_NO_LINE, None, None, None, None, ok=False)
    b_cur, b_ok, b_exp, b_prev, b_rows, b_entries, b_json = _NO_LINE, False, None, None, 0, 0, ""
    for (g, bid, seq, record_hash, prev_hash, digest, line, line_seq, key_id, mac, pairing, ts, kind, actor, text,
         eprev) in _stream(conn, dialect, _PAIRED_SQL, (lo, hi)):
        if bid != b_cur:  # ---- the batch's chain: this ledger row and the entry row it logs
            _save_batch(batch_span, b_ok, b_exp, b_prev, b_rows, b_entries)
            batch_span = _batch_span(batches, bid, seq, eprev if pairing else None)
            b_cur, b_ok, b_exp, b_prev = bid, batch_span.ok, batch_span.expected, batch_span.prev
            b_rows, b_entries, b_json = batch_span.rows, batch_span.entries, _json_or_none(bid)
            b_ok = b_ok and b_json is not None
        b_rows += 1
        hex_record = False  # record_hash is a digest recomputed here (so its JSON string is itself in quotes)
        if b_ok:
            if seq != b_exp or (seq == 0) != (pairing == NO_ENTRY):  # the header's row logs no entry, others do
                b_ok = False
            elif seq == 0 and b_rows != 1:  # a second header row
                b_ok = False
            elif seq == 0:
                batch_span.header, b_prev, b_exp = record_hash, record_hash, 1
            elif pairing != LOGGED or eprev != b_prev or type(b_exp) is not int:
                b_ok = False
            elif _entry_hashes(eprev, actor, kind, ts, text, b_json, b_exp, record_hash, names, canonical):
                hex_record = True
                if kind == SIGNATURE_KIND:
                    signatures.append((g, bid, seq, ts, kind, actor, text, eprev, record_hash))
                b_entries += 1
                b_prev, b_exp = record_hash, b_exp + 1
            else:
                b_ok = False
        if line != l_cur:  # ---- the line's chain (verify_scan.scan_ledger's checks, in the same order)
            line_span.ok, line_span.expected, line_span.prev, line_span.rows = l_ok, l_exp, l_prev, l_rows
            line_span = lines.get(line) or lines.setdefault(line, Span(line, line_seq, prev_hash, line_seq, prev_hash))
            l_cur, l_ok, l_exp, l_prev, l_rows = line, line_span.ok, line_span.expected, line_span.prev, line_span.rows
            l_json = _json_or_none(line)
            l_ok = l_ok and l_json is not None
        l_rows += 1
        if l_ok:
            l_ok = (line_seq == l_exp and prev_hash == l_prev and mac is not None and b_json is not None
                    and (pads is None or key_id == fingerprint)
                    and _line_row_hashes(prev_hash, digest, line, line_seq, seq, record_hash, hex_record, key_id, mac,
                                         b_json, l_json, pads))
            if l_ok:
                l_exp, l_prev = line_seq + 1, digest
    line_span.ok, line_span.expected, line_span.prev, line_span.rows = l_ok, l_exp, l_prev, l_rows
    _save_batch(batch_span, b_ok, b_exp, b_prev, b_rows, b_entries)
    return out


def _entry_hashes(eprev: Any, actor: Any, kind: Any, ts: Any, text: Any, b_json: str, b_exp: int, record_hash: Any,
                  names: dict[Any, str], canonical: Any) -> bool:
    """True when the entry row hashes to the hash its ledger row logs (entry_hash_text's formula, the JSON strings of
    actor and kind cached in `names`) and holds canonical data."""
    try:
        actor_json = names.get(actor) or names.setdefault(actor, json_string(actor))
        kind_json = names.get(kind) or names.setdefault(kind, json_string(kind))
        body = (f'{eprev}{{"actor":{actor_json},"batch_id":{b_json},"data":{text},"kind":{kind_json},'
                f'"seq":{b_exp},"ts":{json_string(ts)}}}')
        return bool(sha256(body.encode()).hexdigest() == record_hash and canonical(kind, text))
    except (TypeError, ValueError, AttributeError):
        return False


def _line_row_hashes(prev_hash: Any, digest: Any, line: Any, line_seq: Any, seq: Any, record_hash: Any,
                     hex_record: bool, key_id: Any, mac: Any, b_json: str, l_json: str, pads: Any) -> bool:
    """True when a ledger row hashes to its digest (line_ledger_hash's formula) and, with a site key, its MAC is the
    key's HMAC-SHA256 over the row (`pads`: the key's inner and outer SHA-256 states)."""
    try:
        record_json = f'"{record_hash}"' if hex_record else json_string(record_hash)
        body = (f'{prev_hash}{{"batch_id":{b_json},"line_id":{l_json},"line_seq":{int(line_seq)},'
                f'"record_hash":{record_json},"seq":{int(seq)}}}')
        if sha256(body.encode()).hexdigest() != digest:
            return False
        if pads is None:
            return True
        inner, outer = pads[0].copy(), pads[1].copy()
        inner.update(f"ledger/1\x1f{line}\x1f{line_seq}\x1f{digest}\x1f{key_id}".encode())
        outer.update(inner.digest())
        return bool(outer.hexdigest() == mac)
    except (TypeError, ValueError):
        return False


def _save_batch(span: BatchSpan, ok: bool, expected: Any, prev: Any, rows: int, entries: int) -> None:
    """Write a batch's running state (kept in locals while its rows pass by) back to its span."""
    span.ok, span.expected, span.prev, span.rows, span.entries = ok, expected, prev, rows, entries


def _json_or_none(text: Any) -> str | None:
    """`text` as its JSON string, or None when it is not a str (a damaged row: its span cannot pass)."""
    try:
        return json_string(text)
    except TypeError:
        return None


def _batch_span(batches: dict[Any, BatchSpan], bid: Any, seq: Any, first_prev: Any) -> BatchSpan:
    """The range's span of batch `bid`, started at this ledger row (seq, and its entry's prev_hash) when new."""
    span = batches.get(bid)
    if span is None:
        span = batches.setdefault(bid, BatchSpan(bid, seq, first_prev, seq, first_prev))
    return span


@dataclass(slots=True)
class BatchFacts:
    """What the parent reads beside the pass: each header's hash when it recomputes (None when it does not), the
    number of entry and ledger rows in its snapshot, and (see `settle_counts`) each batch's rows of each table."""

    headers: dict[Any, Any]
    entry_total: int
    ledger_total: int
    entries: dict[Any, int] = field(default_factory=dict)
    ledger: dict[Any, int] = field(default_factory=dict)


def read_facts(conn: Any, dialect: str) -> BatchFacts:
    """Headers checked (recomputed hash) and the tables' row counts, on the parent's snapshot."""
    from fillfinish.record.verify_batches import _recompute_header
    from fillfinish.record.verify_rows import _HEADER_COLUMNS, _count, _Header

    headers: dict[Any, Any] = {}
    for row in _stream(conn, dialect, f"SELECT {', '.join(_HEADER_COLUMNS)} FROM batch", ()):
        header = _Header._make(row)
        ok = _recompute_header(header) == header.header_hash and header.batch_id not in headers
        headers[header.batch_id] = header.header_hash if ok else None
    return BatchFacts(headers, _count(conn, dialect, "entry"), _count(conn, dialect, "ledger"))


def settle_counts(conn: Any, dialect: str, parts: list[RangeScan], facts: BatchFacts) -> list[str]:
    """Fill in each batch's row counts and return every batch id (named by a header or a row), in order.

    When the pass saw as many ledger rows as the snapshot holds and paired every entry row with one, each batch's
    counts are its spans' sums (no row of any batch was left out) and its ids are the headers' and the spans'; only
    otherwise are both tables counted per batch (a GROUP BY over every row: 0.6 s a million entries)."""
    from fillfinish.record.verify_rows import _batch_ids, _fetchall

    rows: dict[Any, int] = {}
    paired: dict[Any, int] = {}
    for part in parts:
        for bid, span in part.batches.items():
            rows[bid] = rows.get(bid, 0) + span.rows
            paired[bid] = paired.get(bid, 0) + span.entries
    if sum(rows.values()) == facts.ledger_total and sum(paired.values()) == facts.entry_total:
        facts.entries, facts.ledger = paired, rows
        return sorted(set(facts.headers) | set(rows))
    facts.entries, facts.ledger = (dict(_fetchall(conn, dialect, f"SELECT batch_id, COUNT(*) FROM {table} GROUP BY "
                                                  "batch_id", ())) for table in ("entry", "ledger"))
    return _batch_ids(conn, dialect, None)


def joined_entries(batch: Any, parts: list[RangeScan], facts: BatchFacts) -> int | None:
    """The number of entries of an intact batch from its spans in range order, or None when they do not show it
    intact (header recomputed and logged at seq 0, every row passed, spans link up, every entry and ledger row of
    the batch was paired)."""
    header = facts.headers.get(batch)
    spans = [part.batches[batch] for part in parts if batch in part.batches]
    if header is None or not spans:
        return None
    expected, prev, rows, entries = 0, None, 0, 0
    for span in spans:
        if not span.ok or span.first_seq != expected:
            return None
        if expected == 0 and span.header != header:
            return None
        if expected != 0 and span.first_prev != prev:
            return None
        expected, prev = span.expected, span.prev
        rows += span.rows
        entries += span.entries
    if rows != expected or rows != facts.ledger.get(batch, 0) or entries != facts.entries.get(batch, 0):
        return None
    return entries


def signatures_ok(conn: Any, dialect: str, key: SiteKey | None, rows: list[tuple[Any, ...]], header: str) -> bool:
    """True when every signature entry of one otherwise intact batch is valid (verify_batches.signature_problem with
    the signed entry looked up by its seq: in an intact chain each hash is one entry's)."""
    import json

    from fillfinish.record.verify_batches import signature_problem
    from fillfinish.record.verify_rows import _Entry, _fetchall

    for g, bid, seq, ts, kind, actor, text, prev, digest in rows:
        try:
            data = json.loads(text)
            signed_seq = data.get("signed_seq") if isinstance(data, dict) else None
            by_hash: dict[Any, Any] = {}
            if isinstance(signed_seq, int) and not isinstance(signed_seq, bool) and signed_seq > 0:
                for target_seq, target_hash in _fetchall(conn, dialect, "SELECT seq, hash FROM entry WHERE "
                                                         "batch_id = ? AND seq = ?", (bid, signed_seq)):
                    by_hash[target_hash] = _Entry(None, bid, target_seq, None, None, None, None, None, None,
                                                  target_hash)
            row = _Entry(None, bid, seq, g, ts, kind, actor, text, prev, digest)
            if not isinstance(data, dict) or signature_problem(row, data, by_hash, header, key) is not None:
                return False
        except (TypeError, ValueError, AttributeError):
            return False
    return True
