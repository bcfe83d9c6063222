"""Decision 0019: an ok outcome marked `synced_by_next` is queued (not awaited), committed ahead of the very next
entry and synced by that entry's commit (SQLite synchronous=NORMAL for that one commit, FULL again for the next); a
failed commit of it fails the next write; failures and intents always sync and are awaited."""

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
    await rec.committed()  # queued, not awaited by the action: committed by the writer thread in order
    out = rec.store.entries(rec.batch_id)[-1]
    assert out.kind == "outcome" and out.data["ok"] is True  # committed: visible to another reader
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


async def test_a_queued_outcome_that_fails_fails_the_next_awaited_write(rec: BatchRecorder,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller does not await a synced_by_next outcome; if its commit fails, the next entry (the next action's
    intent) raises RecordFailure, so no device is told anything after an outcome that is not in the record."""
    from fillfinish.batch.recorder import RecordFailure
    from fillfinish.record.errors import RecordWriteError

    real = rec.store.append_checked

    def failing(batch_id, checked, *, durable=True):  # type: ignore[no-untyped-def]
        if checked.kind == "outcome":
            raise RecordWriteError("disk full")
        return real(batch_id, checked, durable=durable)

    monkeypatch.setattr(rec.store, "append_checked", failing)
    async with rec.action("position", vial=1) as act:
        act.result(vial=1)
        act.synced_by_next()
    with pytest.raises(RecordFailure, match="disk full"):
        async with rec.action("dispense", vial=1, volume_ul=100.0):
            pytest.fail("the dispense ran after an outcome that was not written")
    assert [e.kind for e in rec.store.entries(rec.batch_id)] == ["intent"]
