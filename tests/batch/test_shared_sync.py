"""Decision 0019: an ok outcome marked `synced_by_next` is committed at once and synced by the very next entry's
commit (SQLite synchronous=NORMAL for that one commit, FULL again for the next); failures and intents always sync."""

from __future__ import annotations

import pytest

from fillfinish.batch.recorder import BatchRecorder


def _sync_level(rec: BatchRecorder) -> int:
    """The write connection's PRAGMA synchronous (1 NORMAL, 2 FULL)."""
    return int(rec.store._connection().execute("PRAGMA synchronous").fetchone()[0])


async def test_synced_by_next_commits_at_once_and_the_next_entry_syncs(rec: BatchRecorder) -> None:
    async with rec.action("dispense", vial=1, volume_ul=100.0) as act:
        assert _sync_level(rec) == 2  # the intent synced before the body
        act.result(vial=1, delivered_ul=100.0)
        act.synced_by_next()
    out = rec.store.entries(rec.batch_id)[-1]
    assert out.kind == "outcome" and out.data["ok"] is True  # committed: visible to another reader at once
    assert _sync_level(rec) == 1
    rec.write("vial", vial=1, status="accepted", reason="", weighed=False)
    assert _sync_level(rec) == 2  # the verdict's commit synced the WAL, the outcome before it with it
    assert [e.kind for e in rec.store.entries(rec.batch_id)] == ["intent", "outcome", "vial"]
    assert rec.store.verify(rec.batch_id).ok


async def test_a_failed_outcome_always_syncs(rec: BatchRecorder) -> None:
    with pytest.raises(TimeoutError):
        async with rec.action("position", vial=2) as act:
            act.synced_by_next()
            raise TimeoutError("positioner did not arrive")
    assert _sync_level(rec) == 2
    assert rec.store.entries(rec.batch_id)[-1].data["ok"] is False
