"""The batch check of `record verify`: each batch's header, entry chain, ledger rows and signatures.

Batches are read as three ordered streams (headers, entries, the ledger's (seq, record_hash)) merged per batch, so
memory holds one batch at a time. Each batch first runs a fast path over the plain rows (no row objects, cached JSON
strings); only a batch where any check does not pass goes through `check_batch`, which names the first problem. The
fast path says "intact" only where `check_batch` would, so the findings are the same (decision 0018).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from hashlib import sha256
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

from fillfinish.record.chain import HEADER_FIELDS, canonical_text, entry_hash_text, header_hash, json_string
from fillfinish.record.sitekey import SiteKey, entry_signature_message
from fillfinish.record.tombstones import PURGE_REGISTRY, TOMBSTONE_KIND, check_purged, purged_line
from fillfinish.record.verify_report import BatchResult, Problem
from fillfinish.record.verify_rows import _ENTRY_SQL, _HEADER_COLUMNS, _Entry, _Header, _stream

SIGNATURE_KIND = "signature"
_BATCH_ID = itemgetter(1)


def _merged(conn: Any, dialect: str, where: str, params: list[Any], rank: dict[str, int]
            ) -> Iterator[tuple[int, str, Any, list[tuple[Any, ...]], dict[int, str]]]:
    """(rank, batch_id, header row or None, entry rows, {seq: record_hash}) of every batch id found in any of the
    three ordered streams, in the database's batch order (ids not in `rank` are skipped)."""
    headers = ((rank.get(row[0], -1), row) for row in _stream(
        conn, dialect, f"SELECT {', '.join(_HEADER_COLUMNS)} FROM batch {where} ORDER BY batch_id", params))
    entries = ((rank.get(bid, -1), list(rows)) for bid, rows in groupby(_stream(
        conn, dialect, f"{_ENTRY_SQL} {where} ORDER BY batch_id, seq, id", params), _BATCH_ID))
    ledger = ((rank.get(bid, -1), {row[1]: row[2] for row in rows}) for bid, rows in groupby(_stream(
        conn, dialect, f"SELECT batch_id, seq, record_hash FROM ledger {where} ORDER BY batch_id, seq", params),
        itemgetter(0)))
    streams = [headers, entries, ledger]
    heads = [next(stream, None) for stream in streams]
    empty: tuple[Any, ...] = (None, [], {})
    for bid, i in rank.items():
        found = []
        for n, stream in enumerate(streams):
            while heads[n] is not None and heads[n][0] < i:
                heads[n] = next(stream, None)
            if heads[n] is not None and heads[n][0] == i:
                found.append(heads[n][1])
                heads[n] = next(stream, None)
            else:
                found.append(empty[n])
        header = _Header._make(found[0]) if found[0] is not None else None
        yield i, bid, header, found[1], found[2]


def _check_batches(conn: Any, dialect: str, key: SiteKey | None, ids: list[str], only: str | None,
                   ranged: bool = False) -> list[BatchResult]:
    """Check every batch of `ids` (with `ranged`, ids is one contiguous run of the database's batch order and only
    that id range is read), streaming headers, entries and ledger rows."""
    if not ids:
        return []
    where, params = ("WHERE batch_id = ?", [only]) if only is not None else ("", [])
    if ranged:
        where, params = "WHERE batch_id >= ? AND batch_id <= ?", [ids[0], ids[-1]]
    rank = {bid: i for i, bid in enumerate(ids if only is None else [only])}
    tombstones = _tombstones(conn, dialect)
    return [_one_batch(bid, header, rows, logged, tombstones.get(bid), key)
            for _i, bid, header, rows, logged in _merged(conn, dialect, where, params, rank)]


def check_named(conn: Any, dialect: str, key: SiteKey | None, ids: list[str]) -> dict[str, BatchResult]:
    """The full check of each named batch, read on its own (the batches the one-pass check could not show intact)."""
    if not ids:
        return {}
    tombstones = _tombstones(conn, dialect)
    out: dict[str, BatchResult] = {}
    for bid in ids:
        for _i, _bid, header, rows, logged in _merged(conn, dialect, "WHERE batch_id = ?", [bid], {bid: 0}):
            out[bid] = _one_batch(bid, header, rows, logged, tombstones.get(bid), key)
    return out


def _one_batch(bid: str, header: Any, rows: list[tuple[Any, ...]], logged: dict[int, str],
               tombstone: dict[str, Any] | None, key: SiteKey | None) -> BatchResult:
    """One batch's result: a purged batch against its tombstone, else the fast path, else check_batch."""
    if tombstone is not None and header is None and not rows:
        purged = [_PurgedLedgerRow(seq, seq, record_hash) for seq, record_hash in sorted(logged.items())]
        if check_purged(tombstone, header, [], purged) is None:
            return BatchResult(bid, True, 0, note=purged_line(tombstone))
    result = _fast_batch(bid, header, rows, logged, key)
    if result is None:
        result = check_batch(bid, header, [_Entry._make(row) for row in rows], logged, key=key)
    return result


def _fast_batch(batch_id: str, header: Any, rows: list[tuple[Any, ...]], logged: dict[int, str],
                key: SiteKey | None) -> BatchResult | None:
    """The intact result of a batch whose every check passes, from the plain rows; None as soon as any check does not
    pass (then check_batch finds and names the problem). Same formulas as chain.entry_hash_text."""
    if header is None or logged.get(0) != header.header_hash or _recompute_header(header) != header.header_hash:
        return None
    prev = header.header_hash
    expected = 1
    get = logged.get
    names: dict[Any, str] = {}  # actor/kind/batch id -> its JSON string (a few distinct values per batch)
    by_hash: dict[str, Any] | None = None
    try:
        bid_json = json_string(batch_id)
        for row in rows:
            _id, bid, seq, _global, ts, kind, actor, text, prev_hash, digest = row
            if seq != expected or prev_hash != prev or get(seq) != digest or bid != batch_id:
                return None
            actor_json = names.get(actor) or names.setdefault(actor, json_string(actor))
            kind_json = names.get(kind) or names.setdefault(kind, json_string(kind))
            body = (f'{prev}{{"actor":{actor_json},"batch_id":{bid_json},"data":{text},"kind":{kind_json},'
                    f'"seq":{expected},"ts":{json_string(ts)}}}')
            if sha256(body.encode("utf-8")).hexdigest() != digest or canonical_text(text) != text:
                return None
            if kind == SIGNATURE_KIND:
                by_hash = by_hash or {other[9]: _Entry._make(other) for other in rows}
                if signature_problem(_Entry._make(row), json.loads(text), by_hash, header.header_hash, key) is not None:
                    return None
            prev = digest
            expected += 1
    except (TypeError, ValueError, AttributeError):
        return None
    if len(logged) != expected:  # ledger rows other than 0..n (a tail of removed entries, or stray seqs)
        return None
    return BatchResult(batch_id, True, len(rows))

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
