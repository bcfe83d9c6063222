"""Tombstones of purged batches, as `verify` needs them: a purged batch has no header and no entries left, only its
ledger rows, and verify accepts that when a tombstone in the REG-PURGE registry names exactly those ledger rows.

The tombstone (written and signed by fillfinish.quality.purge before the rows go) holds the batch id, its header hash,
entry count, last entry hash and a digest of its ledger rows; the registry chain that holds it is itself verified
like any batch, so a tombstone cannot be added or changed without verify noticing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from fillfinish.record.models import EntryRow

PURGE_REGISTRY = "REG-PURGE"
TOMBSTONE_KIND = "tombstone"
ENTRY = EntryRow.__table__


def ledger_digest(rows: Sequence[Any]) -> str:
    """sha256 over the (seq, record_hash) pairs of a batch's ledger rows in write order."""
    text = "\n".join(f"{row.seq}:{row.record_hash}" for row in sorted(rows, key=lambda r: r.global_seq))
    return hashlib.sha256(text.encode()).hexdigest()


def load_tombstones(conn: Connection) -> dict[str, dict[str, Any]]:
    """batch id -> tombstone data, read from the raw REG-PURGE entry rows (the last tombstone of a batch wins)."""
    rows = conn.execute(select(ENTRY.c.data, ENTRY.c.seq).where(ENTRY.c.batch_id == PURGE_REGISTRY,
                                                                ENTRY.c.kind == TOMBSTONE_KIND)
                        .order_by(ENTRY.c.seq)).all()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        try:
            data = json.loads(row.data)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("batch_id"), str):
            out[data["batch_id"]] = dict(data, tombstone_entry=row.seq)
    return out


def check_purged(tombstone: dict[str, Any], header: Any, entries: Sequence[Any], ledger: Sequence[Any]) -> str | None:
    """None when the batch was purged cleanly (no header, no entries, ledger rows as the tombstone names them); else
    the reason it was not (verify then reports the batch as usual)."""
    if header is not None or entries:
        return "purge incomplete: the batch still has its header or entries"
    if len(ledger) != tombstone.get("ledger_rows"):
        return f"{len(ledger)} ledger rows, the tombstone names {tombstone.get('ledger_rows')}"
    if ledger_digest(ledger) != tombstone.get("ledger_digest"):
        return "the ledger rows differ from those the tombstone names"
    head = next((row for row in ledger if row.seq == 0), None)
    if head is None or head.record_hash != tombstone.get("header_hash"):
        return "the header hash in the ledger differs from the tombstone's"
    return None


def purged_line(tombstone: dict[str, Any]) -> str:
    """How verify shows a purged batch, e.g. 'purged 2032-07-01 by quinn (tombstone REG-PURGE entry 4, 120 entries)'."""
    return (f"purged {tombstone.get('purged_on', '?')} by {tombstone.get('purged_by', '?')} "
            f"(tombstone {PURGE_REGISTRY} entry {tombstone.get('tombstone_entry')}, {tombstone.get('entries')} entries, "
            f"last hash {str(tombstone.get('last_hash'))[:12]}; ledger rows match)")
