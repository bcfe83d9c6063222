"""A failed write to the record stops the batch in a safe state: nothing more is done to the hardware, the lamp is
off, no dispense runs, and what was recorded before the failure still verifies."""

from __future__ import annotations

import pytest

from fillfinish.batch.controller import BatchController, TipLot
from fillfinish.record.store import RecordWriteError
from fillfinish.record.verify import verify
from sim.runner import Simulator

from e2e_support import finish, start_batch

pytestmark = pytest.mark.slow


async def test_record_write_failure_stops_safely(controller: BatchController, simulator: Simulator,
                                                 tip_lot: TipLot, monkeypatch: pytest.MonkeyPatch) -> None:
    real_append = controller.store.append_checked  # the batch recorder's way in (it checks the entry first)
    state = {"dispenses": 0}

    def failing_append(batch_id, checked, **kw):  # type: ignore[no-untyped-def]
        if checked.kind == "intent" and checked.payload.get("action") == "dispense":
            state["dispenses"] += 1
            if state["dispenses"] == 3:  # the disk is gone just before the third vial's dispense
                raise RecordWriteError("disk I/O error (simulated)")
        return real_append(batch_id, checked, **kw)  # kw: durable (decision 0019)

    monkeypatch.setattr(controller.store, "append_checked", failing_append)
    dispensed_before = len(simulator.world.dispensed)
    task = start_batch(controller, lot="L-DISK", vials=10, operator="op.anna", tip_lot=tip_lot)
    outcome = await finish(task, allow=("Held",))  # the failed write leaves the line Held and ends the run

    assert "safe state" in outcome.message and "disk I/O error" in outcome.message
    assert outcome.disposition is None
    assert not simulator.world.lamp.commanded
    vials_hit = {e.position for e in simulator.world.dispensed[dispensed_before:] if e.position}
    assert vials_hit == {1, 2}, "no dispense without its intent in the record"
    assert verify(controller.store, outcome.batch_id).ok
