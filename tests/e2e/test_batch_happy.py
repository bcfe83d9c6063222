"""A whole batch on the simulator over the real transports: sequence, record, world and disposition agree."""

from __future__ import annotations

import pytest

from fillfinish.batch.controller import BatchController, TipLot
from fillfinish.batch.disposition import SUITABLE
from fillfinish.machine.packml import CommandRefused
from fillfinish.record.verify import verify
from sim.runner import Simulator

from e2e_support import finish, kinds, start_batch

pytestmark = pytest.mark.slow


async def test_whole_batch_is_suitable_and_recorded(controller: BatchController, simulator: Simulator,
                                                    tip_lot: TipLot) -> None:
    before = {p: v for p, v in simulator.world.vials.items()}
    outcome = await finish(start_batch(controller, lot="L-HAPPY", vials=12, operator="op.anna", tip_lot=tip_lot))

    assert outcome.state == "Complete", outcome
    assert outcome.disposition is not None and outcome.disposition.verdict == SUITABLE, outcome.disposition
    assert (outcome.accepted, outcome.rejected, outcome.uncertain) == (12, 0, 0)
    assert outcome.uv_dose_mj_cm2 >= 300.0 and outcome.tip_dose_mj_cm2 >= 200.0

    store = controller.store
    entries = store.entries(outcome.batch_id)
    assert verify(store, outcome.batch_id).ok
    # the simulator's site config marks itself: the batch is recorded as a simulation, never a production batch
    header = store.batch(outcome.batch_id)
    assert header.mode == "simulation" and 'mode = "production"' in header.recipe_snapshot
    # the PackML path, in order
    states = [e.data["to"] for e in kinds(entries, "state")]
    assert states == ["Resetting", "Idle", "Starting", "Execute", "Completing", "Complete"]
    # the phase sequence, in order
    started = [e.data["phase"] for e in kinds(entries, "phase", event="start")]
    assert started == ["line_checks", "uv_cycle", "tip_sterilisation", "prime", "fill", "post_fill"]
    # intent before outcome for every dispense, each vial judged once, the record matches the world
    for vial in range(1, 13):
        intent = kinds(entries, "intent", action="dispense", vial=vial)
        outcome_e = kinds(entries, "outcome", action="dispense", vial=vial)
        assert len(intent) == 1 and len(outcome_e) == 1 and intent[0].seq < outcome_e[0].seq
        assert outcome_e[0].data["intent"] == intent[0].seq
        assert kinds(entries, "vial", vial=vial)[0].data["status"] == "accepted"
        received = simulator.world.vials[vial] - before.get(vial, 0.0)
        assert received == pytest.approx(100.0, abs=0.5)
    weighed = [e.data["vial"] for e in kinds(entries, "vial") if e.data.get("weighed")]
    assert weighed == [1, 10, 12]  # every 10th plus first and last
    assert kinds(entries, "tip_step")[0].data["lot"] == "TL-TEST-1"
    assert kinds(entries, "uv_cycle", step="uv_cycle")[0].data["dose_mj_cm2"] >= 300.0
    assert kinds(entries, "measurement", signal="particles"), "continuous particle monitoring is in the record"
    lamp = [e for e in entries if e.kind == "outcome" and e.data["action"] in ("lamp_on", "lamp_off")]
    assert [e.data["action"] for e in lamp] == ["lamp_on", "lamp_off", "lamp_on", "lamp_off"]
    assert not simulator.world.lamp_on()
    assert kinds(entries, "disposition")[0].data["verdict"] == SUITABLE


async def test_invalid_command_is_refused_and_recorded(controller: BatchController, tip_lot: TipLot) -> None:
    outcome = await finish(start_batch(controller, lot="L-REFUSE", vials=10, operator="op.anna", tip_lot=tip_lot))
    with pytest.raises(CommandRefused, match="Start"):
        await controller.command("Start", "op.anna", "again")
    entries = controller.store.entries(outcome.batch_id)
    refused = kinds(entries, "command_refused")
    assert refused and refused[-1].data["command"] == "Start" and refused[-1].data["state"] == "Complete"


async def test_line_checks_refuse_an_expired_media_fill(simulator: Simulator, tmp_path, fgf2, tip_lot) -> None:
    from fillfinish.config import load_site_config
    from fillfinish.session import controller_session

    path = simulator.write_site_config(tmp_path / "site.toml", f"sqlite:///{tmp_path / 'r.db'}")
    text = path.read_text().replace("aps_validity_days = 365", "aps_validity_days = 30")
    path.write_text(text)
    async with controller_session(load_site_config(path), fgf2) as c:
        outcome = await finish(start_batch(c, lot="L-APS", vials=10, operator="op.anna", tip_lot=tip_lot))
    assert outcome.state == "Stopped"
    assert outcome.accepted == 0
    from fillfinish.record.store import RecordStore

    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        checks = {e.data["check"]: e.data["ok"] for e in kinds(store.entries(outcome.batch_id), "line_check")}
    finally:
        store.close()
    assert checks["aps_valid"] is False and checks["door_closed"] is True
    assert not simulator.world.lamp_on(), "the lamp never came on"
