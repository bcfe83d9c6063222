"""Pure hash-chain functions of the batch record: canonical JSON, header hash, entry hash, ledger hash.

Every hash in the record is SHA-256 over canonical JSON, so the same content always gives the same hex digest on any
machine and any database (docs/record.md). Nothing here touches a database: verify.py and store.py both use it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

GENESIS_LEDGER_HASH = "0" * 64
"""prev_hash of the first ledger row (global chain across all batches)."""

HEADER_FIELDS: tuple[str, ...] = (
    "batch_id",
    "created_at",
    "product",
    "product_code",
    "recipe_name",
    "recipe_version",
    "recipe_hash",
    "recipe_snapshot",
    "lot",
    "planned_vials",
    "operator",
    "mode",
    "site_config",
)
"""The batch header fields covered by the header hash (site_config as a JSON object, not text)."""


class CanonicalJSONError(ValueError):
    """A value cannot be written as canonical JSON (wrong type, non-str key, NaN or infinity); names the path."""


def normalise(value: Any, path: str = "data") -> Any:
    """Return `value` as plain JSON types (dict with str keys, list, str, int, float, bool, None), or raise.

    Tuples become lists; anything else (datetime, Decimal, set, bytes, NaN, inf, non-str keys) is refused so that what
    is read back from the database is exactly what was hashed.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CanonicalJSONError(f"{path}: {value!r} is not allowed in the record (only finite numbers)")
        return float(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(f"{path}: key {key!r} is a {type(key).__name__}; keys must be strings")
            out[key] = normalise(item, f"{path}.{key}")
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [normalise(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise CanonicalJSONError(
        f"{path}: {type(value).__name__} {value!r} cannot be recorded; use str, int, float, bool, None, list or dict"
    )


def canonical_json(value: Any) -> str:
    """The one text form of a JSON value: sorted keys, no spaces, UTF-8 kept, NaN/inf refused."""
    return canonical_json_normalised(normalise(value))


def canonical_json_normalised(value: Any) -> str:
    """canonical_json of a value `normalise` already returned (the append path normalises once, not twice)."""
    return str(_canonical_dumps(value))  # = json.dumps(..., sort_keys, compact, UTF-8 kept, no NaN)


def sha256_hex(text: str) -> str:
    """SHA-256 of the UTF-8 bytes of `text`, as 64 lowercase hex digits."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def format_ts(moment: datetime) -> str:
    """A timezone-aware datetime as UTC ISO-8601 text with microseconds and a Z, e.g. 2026-11-25T14:03:07.123456Z."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"timestamp {moment!r} has no timezone; the record needs an aware UTC time")
    utc = moment.astimezone(UTC)
    if utc.year >= 1000:  # isoformat is C and a fifth of strftime's cost; the same text for 4-digit years
        return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Inverse of format_ts: record text to an aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def header_hash(fields: Mapping[str, Any]) -> str:
    """Hash of a batch header: SHA-256 over canonical JSON of exactly HEADER_FIELDS (missing ones are an error)."""
    missing = [name for name in HEADER_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"header is missing {', '.join(missing)}")
    return sha256_hex(canonical_json({name: fields[name] for name in HEADER_FIELDS}))


def entry_hash(prev_hash: str, *, batch_id: str, seq: int, ts: str, kind: str, actor: str, data: Any) -> str:
    """Hash of one entry: SHA-256 over prev_hash followed by canonical JSON of (batch_id, seq, ts, kind, actor, data)."""
    body = canonical_json({"batch_id": batch_id, "seq": seq, "ts": ts, "kind": kind, "actor": actor, "data": data})
    return sha256_hex(prev_hash + body)


def ledger_hash(prev_hash: str, *, global_seq: int, batch_id: str, seq: int, record_hash: str) -> str:
    """Hash of one ledger row (global chain): prev_hash + canonical (global_seq, batch_id, seq, record_hash)."""
    body = canonical_json({"global_seq": global_seq, "batch_id": batch_id, "seq": seq, "record_hash": record_hash})
    return sha256_hex(prev_hash + body)


# --------------------------------------------------------------------------------------------- fast paths (decision 0012)
_dumps = json.encoder.encode_basestring  # type: ignore[attr-defined]  # C: one JSON string, UTF-8 kept
json_string = _dumps
"""One str as its canonical JSON string (C encoder, UTF-8 kept): what the hash formulas below write for a text."""
_canonical_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]  # the C scanner when available
try:  # the C encoder built once with canonical_json's settings (json.dumps builds one per call)
    _encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, None, json.encoder.encode_basestring, None, ":", ",", True, False, False)
except (AttributeError, TypeError):  # pragma: no cover - pure-Python json
    _encode = None


def canonical_text(text: str) -> str | None:
    """The canonical form of stored JSON `text`, or None when it is not JSON at all (NaN and infinity included).

    Stored text is exactly canonical when `canonical_text(t) == t`; text with duplicate keys never is, because the
    parse keeps one value per key and the canonical form then differs from what was stored.
    """
    try:
        value, end = _scan(text, 0)
        if end != len(text):
            return None
        if _encode is not None and isinstance(value, (dict, list)):
            return "".join(_encode(value, 0))
        return str(_canonical_dumps(value))
    except (ValueError, TypeError, RecursionError, StopIteration):
        return None


def entry_hash_text(prev_hash: str, *, batch_id: str, seq: int, ts: str, kind: str, actor: str, data_text: str) -> str:
    """entry_hash() for data already in canonical text form (the same digest, without re-serialising the data)."""
    body = (f'{{"actor":{_dumps(actor)},"batch_id":{_dumps(batch_id)},"data":{data_text},'
            f'"kind":{_dumps(kind)},"seq":{int(seq)},"ts":{_dumps(ts)}}}')
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def line_ledger_hash(prev_hash: str, *, line_id: str, line_seq: int, batch_id: str, seq: int, record_hash: str) -> str:
    """Hash of one row of a line's ledger chain: prev_hash + canonical (batch_id, line_id, line_seq, record_hash, seq).

    Rows written before the per-line ledgers (no MAC) keep the global formula of ledger_hash()."""
    body = (f'{{"batch_id":{_dumps(batch_id)},"line_id":{_dumps(line_id)},"line_seq":{int(line_seq)},'
            f'"record_hash":{_dumps(record_hash)},"seq":{int(seq)}}}')
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()
