"""Readable and JSON renderings of one batch record, for QA review and export (no database access here)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fillfinish.record.chain import format_ts
from fillfinish.record.models import BatchHeader, Entry
from fillfinish.record.names import escape_text

JSON_FORMAT = "fillfinish-batch-record/1"
"""Identifier of the JSON export layout (bump when it changes)."""

SUMMARY_WIDTH = 100


def _value(value: Any) -> str:
    """A short text form of one data value: plain strings and numbers as they are, containers as compact JSON."""
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def summarise(data: dict[str, Any], width: int = SUMMARY_WIDTH) -> str:
    """Data of an entry as 'key=value key=value', cut to `width` characters with '...'."""
    text = escape_text(" ".join(f"{key}={_value(data[key])}" for key in sorted(data)))
    return text if len(text) <= width else text[: width - 3] + "..."


def _utc(ts_text: str) -> str:
    """Record timestamp text shown as 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    return ts_text.replace("T", " ").rstrip("Z")


def render_text(header: BatchHeader, entries: Sequence[Entry]) -> str:
    """The record for a person: header block, then one line per entry (seq, UTC time, kind, actor, data summary);
    control characters in any stored text are shown escaped, so no text can print a line of its own."""
    created = format_ts(header.created_at)
    e = escape_text
    lines = [
        f"BATCH RECORD {e(header.batch_id)}  ({header.mode.replace('_', ' ')})",
        f"  Product        {e(header.product)} ({e(header.product_code)})",
        f"  Lot            {e(header.lot)}",
        f"  Recipe         {e(header.recipe_name)} version {e(header.recipe_version)}",
        f"  Recipe sha256  {header.recipe_hash}",
        f"  Planned vials  {header.planned_vials}",
        f"  Operator       {e(header.operator)}",
        f"  Created (UTC)  {_utc(created)}",
        f"  Header hash    {header.header_hash}",
        f"  Entries        {len(entries)}",
        "",
        f"{'seq':>6}  {'time (UTC)':<26}  {'kind':<16}  {'actor':<14}  data",
    ]
    for entry in entries:
        lines.append(
            f"{entry.seq:>6}  {_utc(format_ts(entry.ts)):<26}  {e(entry.kind):<16}  {e(entry.actor):<14}  "
            f"{summarise(entry.data)}"
        )
    if entries:
        lines.append("")
        lines.append(f"  Last entry hash {entries[-1].hash}")
    return "\n".join(lines) + "\n"


def to_json(header: BatchHeader, entries: Sequence[Entry]) -> dict[str, Any]:
    """The whole record as a JSON-ready dict (timestamps as the record's UTC ISO text, hashes included)."""
    return {
        "format": JSON_FORMAT,
        "batch": {
            "batch_id": header.batch_id,
            "created_at": format_ts(header.created_at),
            "product": header.product,
            "product_code": header.product_code,
            "recipe_name": header.recipe_name,
            "recipe_version": header.recipe_version,
            "recipe_hash": header.recipe_hash,
            "recipe_snapshot": header.recipe_snapshot,
            "lot": header.lot,
            "planned_vials": header.planned_vials,
            "operator": header.operator,
            "mode": header.mode,
            "site_config": header.site_config,
            "header_hash": header.header_hash,
        },
        "entries": [
            {
                "seq": entry.seq,
                "global_seq": entry.global_seq,
                "ts": format_ts(entry.ts),
                "kind": entry.kind,
                "actor": entry.actor,
                "data": entry.data,
                "prev_hash": entry.prev_hash,
                "hash": entry.hash,
            }
            for entry in entries
        ],
    }
