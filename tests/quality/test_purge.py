"""Retention and purge: refused before the retention date (named) and under a legal hold; afterwards the batch goes,
a signed tombstone stays, and `verify` is still intact and shows the purge. Direct deletes stay refused."""

from __future__ import annotations

import datetime as dt

import pytest

from fillfinish.people import PermissionDenied, UserStore
from fillfinish.quality import purge
from fillfinish.quality.common import QualityRefused
from fillfinish.quality.release import release
from fillfinish.record import RecordStore
from fillfinish.record.store import UnknownBatchError
from quality_helpers import PASSWORDS, enter_all_viable, raw, run_batch


def _released(store: RecordStore, users: UserStore) -> tuple[str, dt.date]:
    """A released batch and its retention date."""
    batch = run_batch(store)
    enter_all_viable(store, users, batch)
    out = release(store, batch, "quinn", PASSWORDS["quinn"], expiry=dt.date(2029, 6, 30), users=users)
    return batch, dt.date.fromisoformat(out.release.data["retention_until"])


def test_purge_one_day_before_retention_is_refused(store: RecordStore, users: UserStore) -> None:
    """The day before the retention date: refused, naming the date; on the date: purged, verify intact."""
    batch, keep = _released(store, users)
    other = run_batch(store)
    with pytest.raises(QualityRefused, match=f"retention date {keep.isoformat()} not reached"):
        purge.purge(store, batch, user="qiana", password=PASSWORDS["qiana"], today=keep - dt.timedelta(days=1),
                    users=users)
    with pytest.raises(QualityRefused, match="never released or rejected"):
        purge.purge(store, other, user="qiana", password=PASSWORDS["qiana"], today=keep, users=users)
    with pytest.raises(PermissionDenied):
        purge.purge(store, batch, user="root", password=PASSWORDS["root"], today=keep, users=users)
    entries = store.entries(batch)
    tomb, sig = purge.purge(store, batch, user="qiana", password=PASSWORDS["qiana"], today=keep,
                            reason="retention SOP-12", users=users)
    assert tomb.batch_id == "REG-PURGE" and tomb.data["entries"] == len(entries)
    assert tomb.data["last_hash"] == entries[-1].hash and tomb.data["purged_by"] == "qiana"
    assert sig.data["signed_hash"] == tomb.hash and sig.data["meaning"] == "approved"
    with pytest.raises(UnknownBatchError):
        store.entries(batch)
    report = store.verify()
    assert report.ok, report.lines()
    line = next(x for x in report.lines() if x.startswith(batch))
    assert f"purged {keep.isoformat()} by qiana" in line and "ledger rows match" in line
    assert store.verify(batch).ok and store.entries(other)


def test_a_legal_hold_blocks_the_purge_until_released(store: RecordStore, users: UserStore) -> None:
    """Hold (QA or admin, with reason) refuses purge; releasing it allows the purge."""
    batch, keep = _released(store, users)
    purge.place_hold(store, batch, "litigation 2031-17", user="root", password=PASSWORDS["root"], users=users)
    with pytest.raises(QualityRefused, match="already on legal hold"):
        purge.place_hold(store, batch, "again", user="quinn", password=PASSWORDS["quinn"], users=users)
    with pytest.raises(QualityRefused, match=r"under legal hold .*litigation 2031-17"):
        purge.purge(store, batch, user="qiana", password=PASSWORDS["qiana"], today=keep + dt.timedelta(days=400),
                    users=users)
    purge.release_hold(store, batch, "case closed", user="quinn", password=PASSWORDS["quinn"], users=users)
    assert purge.holds(store) == {}
    purge.purge(store, batch, user="qiana", password=PASSWORDS["qiana"], today=keep + dt.timedelta(days=400),
                users=users)
    assert store.verify().ok


def test_deletes_outside_the_purge_service_stay_refused(store: RecordStore, users: UserStore) -> None:
    """Without a purge permit the guards refuse DELETE on entry and batch; the ledger is never deletable."""
    batch = run_batch(store)
    for sql in ("DELETE FROM entry WHERE batch_id = :b", "DELETE FROM batch WHERE batch_id = :b",
                "DELETE FROM ledger WHERE batch_id = :b", "UPDATE entry SET actor = 'x' WHERE batch_id = :b"):
        with pytest.raises(Exception, match="append-only"):
            raw(store, sql, {"b": batch})
    assert store.verify(batch).ok


def test_tampering_after_a_purge_is_still_found(store: RecordStore, users: UserStore) -> None:
    """A ledger row of the purged batch changed: verify fails (the tombstone no longer matches / ledger broken)."""
    from quality_helpers import GUARDS

    batch, keep = _released(store, users)
    purge.purge(store, batch, user="qiana", password=PASSWORDS["qiana"], today=keep, users=users)
    with store.engine.begin() as conn:
        for statement in GUARDS[store.dialect]:
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql(f"DELETE FROM ledger WHERE batch_id = '{batch}' AND seq = 2")
    assert not store.verify().ok
