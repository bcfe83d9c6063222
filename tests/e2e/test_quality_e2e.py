"""Quality on a real simulator batch: a backup taken while the controller fills restores and verifies; the recipe's
retained samples appear in the record and the reconciliation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fillfinish.batch.controller import BatchController, TipLot
from fillfinish.quality.backup import backup, restore
from fillfinish.record import RecordStore

from e2e_support import finish, kinds, start_batch, wait_for

pytestmark = pytest.mark.slow


async def test_backup_while_a_batch_runs_restores_and_verifies(controller: BatchController, db_url: str,
                                                               tmp_path: Path, tip_lot: TipLot) -> None:
    task = start_batch(controller, lot="L-BACKUP", vials=10, operator="op.anna", tip_lot=tip_lot)
    await wait_for(lambda: controller.history.counts["accepted"] >= 2, what="2 vials filled", task=task, timeout=300)
    file = tmp_path / "running.backup"
    await asyncio.to_thread(backup, db_url, file)
    assert not task.done(), "the batch should still be running during the backup"
    outcome = await finish(task)
    assert outcome.state == "Complete"
    report = await asyncio.to_thread(restore, file, f"sqlite:///{tmp_path / 'restored.db'}")
    assert report.ok, report.lines()
    copy = RecordStore(f"sqlite:///{tmp_path / 'restored.db'}", create=False)
    try:
        entries = copy.entries(outcome.batch_id)
        assert kinds(entries, "vial") and not kinds(entries, "disposition")  # a consistent prefix of the run
    finally:
        copy.close()
    # retained samples (fgf2: the last 2 accepted vials) in the record and the reconciliation
    full = controller.store.entries(outcome.batch_id)
    (kept,) = kinds(full, "retained_sample")
    assert kept.data["vials"] == [9, 10] and kept.data["location"]
    (rec,) = kinds(full, "reconciliation")
    assert (rec.data["filled"], rec.data["samples"], rec.data["unaccounted"]) == (8, 2, 0)
