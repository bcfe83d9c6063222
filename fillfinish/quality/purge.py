"""Retention, legal hold and purge of batch records (EU GMP 4.11, Annex 11 s.17): a batch may be removed only on or
after its retention date (stored at QA release or rejection) and never while a legal hold is on it.

The purge writes a tombstone (batch id, header hash, entry count, last entry hash, a digest of its ledger rows, who,
when) to registry REG-PURGE and signs it; then, in one transaction, it inserts a `purge_permit` row (migration
0006_quality) and deletes the batch's entries and header, which the guards allow only for a permitted batch. The
ledger is never touched, so `record verify` still walks the whole ledger and shows the batch as purged (see
fillfinish/record/tombstones.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Column, MetaData, String, Table, delete, func, insert, select

from fillfinish.people.signatures import sign
from fillfinish.people.users import UserStore
from fillfinish.quality.common import QualityRefused, authenticated
from fillfinish.quality.release import decision
from fillfinish.record.chain import format_ts
from fillfinish.record.models import REGISTRY_MODE, BatchRow, Entry, EntryRow, LedgerRow
from fillfinish.record.registry import append_registry, registry_entries
from fillfinish.record.store import RecordStore, RecordWriteError
from fillfinish.record.tombstones import TOMBSTONE_KIND, ledger_digest
from fillfinish.record.typed_entries import of_type, read_typed
from fillfinish.record.vocabulary import Release, typed
from fillfinish.record.vocabulary_registries import LegalHold, Rejection

REGISTRY = "purge"
HOLD_KIND = "legal_hold"
HOLD_ROLES = ("qa", "admin")
PURGE_ROLES = ("qa",)

_meta = MetaData()
PURGE_PERMIT = Table("purge_permit", _meta, Column("batch_id", String(32), primary_key=True),
                     Column("tombstone_hash", String(64)), Column("permitted_at", String(32)))
BATCH = BatchRow.__table__
ENTRY = EntryRow.__table__
LEDGER = LedgerRow.__table__


@dataclass(frozen=True)
class Hold:
    """An active legal hold on a batch."""

    batch_id: str
    reason: str
    by: str
    entry: int


def holds(store: RecordStore) -> dict[str, Hold]:
    """Active legal holds by batch id (the last hold event of a batch decides)."""
    active: dict[str, Hold] = {}
    for row in of_type(read_typed(registry_entries(store, REGISTRY, kinds=[HOLD_KIND])), LegalHold):
        batch_id = row.data.batch_id
        if row.data.event == "placed":
            active[batch_id] = Hold(batch_id, row.data.reason, row.actor, row.seq)
        else:
            active.pop(batch_id, None)
    return active


def place_hold(store: RecordStore, batch_id: str, reason: str, *, user: str, password: str,
               users: UserStore | None = None) -> Entry:
    """Put a legal hold on a batch (QA or admin, with a reason): purge is refused until it is released."""
    store.batch(batch_id)
    account = authenticated(users or UserStore(store), user, password, HOLD_ROLES, f"legal hold on {batch_id}")
    if not reason.strip():
        raise QualityRefused(batch_id, "legal hold", ["a legal hold needs a reason (--reason)"])
    if batch_id in holds(store):
        raise QualityRefused(batch_id, "legal hold", [f"already on legal hold (REG-PURGE entry {holds(store)[batch_id].entry})"])
    return append_registry(store, REGISTRY, HOLD_KIND, {"batch_id": batch_id, "event": "placed",
                                                        "reason": reason.strip()}, account.username)


def release_hold(store: RecordStore, batch_id: str, reason: str, *, user: str, password: str,
                 users: UserStore | None = None) -> Entry:
    """Release the legal hold of a batch (QA or admin, with a reason)."""
    account = authenticated(users or UserStore(store), user, password, HOLD_ROLES, f"release legal hold on {batch_id}")
    if batch_id not in holds(store):
        raise QualityRefused(batch_id, "release of the legal hold", ["the batch is not on legal hold"])
    if not reason.strip():
        raise QualityRefused(batch_id, "release of the legal hold", ["releasing a legal hold needs a reason (--reason)"])
    return append_registry(store, REGISTRY, HOLD_KIND, {"batch_id": batch_id, "event": "released",
                                                        "reason": reason.strip()}, account.username)


def retention_date(store: RecordStore, batch_id: str) -> dt.date | None:
    """The batch's stored retention date (from its release or rejection), or None when it has none."""
    final = decision(store.entries(batch_id, kinds=["release", "rejection"]))
    data = typed(final) if final is not None else None
    value = data.retention_until if isinstance(data, (Release, Rejection)) else None
    return dt.date.fromisoformat(value) if value else None


def purge(store: RecordStore, batch_id: str, *, user: str, password: str, today: dt.date, reason: str = "",
          users: UserStore | None = None) -> tuple[Entry, Entry]:
    """Remove a batch past its retention date, leaving a signed tombstone; returns (tombstone, signature).

    Refused before the retention date (named), without one, under a legal hold, for a registry, or by a non-QA user."""
    header = store.batch(batch_id)
    people = users or UserStore(store)
    account = authenticated(people, user, password, PURGE_ROLES, f"purge {batch_id}")
    reasons = []
    if header.mode == REGISTRY_MODE:
        reasons.append("a registry (master-data audit trail) is never purged")
    keep_until = retention_date(store, batch_id)
    if keep_until is None:
        reasons.append("no retention date recorded: the batch was never released or rejected by QA")
    elif today < keep_until:
        reasons.append(f"retention date {keep_until.isoformat()} not reached (today {today.isoformat()}); the record "
                       "must be kept until then")
    hold = holds(store).get(batch_id)
    if hold is not None:
        reasons.append(f"under legal hold since REG-PURGE entry {hold.entry} ({hold.reason}, by {hold.by}); release "
                       "the hold first")
    ok = store.verify(batch_id).result(batch_id)
    if not ok.ok:
        reasons.append(f"the batch record does not verify ({ok.problem.describe() if ok.problem else '?'}); a record "
                       "under question is not purged")
    if reasons:
        raise QualityRefused(batch_id, "purge", reasons)
    entries = store.entries(batch_id)
    with store._read() as conn:  # noqa: SLF001 - the purge service is part of the record's controlled paths
        ledger = conn.execute(select(LEDGER).where(LEDGER.c.batch_id == batch_id)).all()
    tombstone = append_registry(store, REGISTRY, TOMBSTONE_KIND, {
        "batch_id": batch_id, "product": header.product, "lot": header.lot, "mode": header.mode,
        "header_hash": header.header_hash, "entries": len(entries), "last_hash": entries[-1].hash if entries else None,
        "ledger_rows": len(ledger), "ledger_digest": ledger_digest(ledger),
        "retention_until": keep_until.isoformat() if keep_until else None, "purged_on": today.isoformat(),
        "purged_by": account.username, "name": account.full_name, "reason": reason.strip()}, account.username)
    signature = sign(store, tombstone.batch_id, account.username, "", "approved", f"purge of {batch_id}",
                     users=people, authenticated=account)
    _remove(store, batch_id, tombstone, len(entries))
    return tombstone, signature


def _remove(store: RecordStore, batch_id: str, tombstone: Entry, expected_entries: int) -> None:
    """Delete the batch's entries and header under a purge permit, in one transaction (nothing if it changed)."""
    try:
        with store._write() as conn:  # noqa: SLF001 - the only delete path of the record (migration 0006_quality)
            count = conn.execute(select(func.count()).select_from(ENTRY).where(ENTRY.c.batch_id == batch_id)).scalar()
            if count != expected_entries:
                raise RecordWriteError(f"batch {batch_id} changed while it was being purged ({count} entries, the "
                                       f"tombstone names {expected_entries}); run the purge again")
            conn.execute(insert(PURGE_PERMIT).values(batch_id=batch_id, tombstone_hash=tombstone.hash,
                                                     permitted_at=format_ts(tombstone.ts)))
            conn.execute(delete(ENTRY).where(ENTRY.c.batch_id == batch_id))
            conn.execute(delete(BATCH).where(BATCH.c.batch_id == batch_id))
    except RecordWriteError:
        raise
    except Exception as exc:
        raise RecordWriteError(f"cannot purge batch {batch_id}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
