"""Interlocks and simulator faults during a batch: the right state, alarm, record entries and disposition.

Each fault is injected in the simulator's world; the controller sees it only through the devices' bytes and the
PLC's OPC UA nodes. Nothing resumes without a person: the tests issue Unhold as the supervisor.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fillfinish.batch.controller import BatchController, TipLot
from fillfinish.batch.disposition import NOT_SUITABLE
from fillfinish.config import SiteConfig
from fillfinish.machine.packml import CommandRefused, State
from fillfinish.recipes.loader import load_recipe
from fillfinish.record.verify import verify
from fillfinish.session import controller_session
from sim.faults import FaultSpec
from sim.runner import Simulator

from e2e_support import finish, kinds, record_of, start_batch, stays, wait_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def recipe_variant(tmp_path: Path, **changes: str) -> Any:
    """FGF-2 with some lines replaced ("key = value" by key), written to a temp file and loaded."""
    lines = (REPO / "recipes" / "fgf2.toml").read_text().splitlines()
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip()
        out.append(f"{key} = {changes[key]}" if key in changes and "=" in line else line)
    path = tmp_path / "variant.toml"
    path.write_text("\n".join(out) + "\n")
    return load_recipe(path)


async def held(controller: BatchController, task: "asyncio.Task[Any] | None" = None) -> None:
    await wait_for(lambda: controller.machine.state == State.Held, what="machine Held", task=task)


async def unhold_when_clear(controller: BatchController, simulator: Simulator) -> None:
    """The supervisor removes the cause, waits for the air to recover (a door opening leaves a particle burst that
    the next samples show), and unholds."""
    simulator.world.faults.clear()
    await simulator.clock.asleep(240.0)  # simulated time (on the timeline this wait moves it)
    await wait_for(lambda: controller.monitor is not None and controller.monitor.environment_ok()
                   and controller.line.plc.connected, what="interlocks clear", moving=simulator.clock)
    await controller.command("Unhold", "sup.bob", "cause removed, line inspected")


async def test_door_open_mid_dispense_terminates_and_rejects_the_vial(
        site: SiteConfig, simulator: Simulator, tmp_path: Path, tip_lot: TipLot) -> None:
    slow = recipe_variant(tmp_path, fill_volume_ul="900.0", dispense_speed_ul_s="5.0", vial_count_min="1",
                          prime_volume_ul="0.0")
    async with controller_session(site, slow) as c:
        task = start_batch(c, lot="L-DOOR", vials=3, operator="op.anna", tip_lot=tip_lot)
        await wait_for(lambda: c.live.dispensing and c.batch_id and
                       kinds(c.store.entries(c.batch_id), "intent", action="dispense", vial=2), what="vial 2 dispensing",
                       task=task)
        before = simulator.world.vials.get(2, 0.0)
        simulator.world.faults.inject("door.open")
        await held(c, task)
        entries = await record_of(c)
        vial2 = kinds(entries, "vial", vial=2)
        assert vial2 and vial2[0].data["status"] == "rejected" and "interrupted" in vial2[0].data["reason"]
        outcome2 = kinds(entries, "outcome", action="dispense", vial=2)[0]
        assert outcome2.data["ok"] is False and outcome2.data["delivered_ul"] < 900.0
        assert simulator.world.vials.get(2, 0.0) - before == pytest.approx(outcome2.data["delivered_ul"], abs=1.0)
        assert kinds(entries, "alarm", source="door") and kinds(entries, "deviation", source="door")
        # nothing resumes by itself, and not while the door is open
        await stays(lambda: c.machine.state == State.Held, simulator.clock, 60.0, "Held with the door open")
        with pytest.raises(CommandRefused, match="door"):
            await c.command("Unhold", "sup.bob", "try")
        await unhold_when_clear(c, simulator)
        outcome = await finish(task)
    assert outcome.state == "Complete"
    assert (outcome.accepted, outcome.rejected) == (2, 1)
    assert outcome.disposition.verdict == NOT_SUITABLE
    assert any("door" in r["reason"] for r in outcome.disposition.reasons)


async def test_door_open_during_uv_cycle_switches_lamp_off_and_repeats_cycle(
        controller: BatchController, simulator: Simulator, tip_lot: TipLot) -> None:
    task = start_batch(controller, lot="L-UV", vials=10, operator="op.anna", tip_lot=tip_lot)
    await wait_for(lambda: simulator.world.lamp_on() and controller.phases.current
                   and controller.phases.current.value == "uv_cycle", what="lamp on in UV cycle")
    simulator.world.faults.inject("door.open")
    await wait_for(lambda: not simulator.world.lamp.commanded, what="lamp off")
    await held(controller, task)
    await unhold_when_clear(controller, simulator)
    outcome = await finish(task)
    entries = controller.store.entries(outcome.batch_id)
    assert len(kinds(entries, "uv_start", step="uv_cycle")) == 2, "the interrupted UV cycle was repeated"
    assert kinds(entries, "safe_state", action="lamp_off")
    assert outcome.state == "Complete" and outcome.disposition.verdict == NOT_SUITABLE
    assert verify(controller.store, outcome.batch_id).ok


FAULTS = [
    ("hepa.fan_failure", "alarm", "hepa_fan"),
    ("hepa.pressure_drop", "alarm", "hepa_dp"),
    ("hepa.airflow_out_of_range", "alarm", "downflow"),
    ("particles.burst", "alarm", "particles_0_5um"),
    ("uv.lamp_failure", "alarm", "lamp"),
    ("positioner.jam", "exception", None),
    ("pump.plunger_overload", "exception", None),
    ("balance.unstable", "exception", None),
    ("plc.server_stop", "alarm", "plc_link"),
]


@pytest.mark.parametrize(("fault", "kind", "source"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_fault_during_fill_holds_records_and_disqualifies(
        controller: BatchController, simulator: Simulator, tip_lot: TipLot, fault: str, kind: str,
        source: str | None) -> None:
    duration = 250.0 if fault == "plc.server_stop" else None
    # the particle counter samples once a simulated minute: the burst's batch fills long enough for a sample to land
    # in the fill (10 vials at --speed max can fill between two samples, and Completing does not hold)
    vials = 60 if fault == "particles.burst" else 10
    simulator.world.faults.schedule(FaultSpec(name=fault, at_vial=4, duration_s=duration))
    task = start_batch(controller, lot=f"L-{fault}", vials=vials, operator="op.anna", tip_lot=tip_lot)
    await held(controller, task)

    def found() -> list[object]:  # the hold may come from a failed call before the alarm's own entry is written
        entries = controller.store.entries(controller.batch_id)
        return kinds(entries, kind, source=source) if source else kinds(entries, kind)

    await wait_for(found, what=f"the {kind} entry for {fault}", controller=controller, allow=("Held",))
    assert not simulator.world.lamp_on()
    await wait_for(lambda: controller.line.plc.connected, what="PLC link back", controller=controller,
                   allow=("Held",), moving=simulator.clock)  # the outage ends in simulated time
    await unhold_when_clear(controller, simulator)
    outcome = await finish(task)
    assert outcome.state == "Complete"
    assert outcome.disposition.verdict == NOT_SUITABLE
    rec = outcome.disposition.reconciliation
    assert rec["unaccounted"] == 0 and rec["planned"] == vials
    assert verify(controller.store, outcome.batch_id).ok
    # every vial dispensed into is in the record, and nothing was dispensed twice into one vial
    filled = [e.data["vial"] for e in kinds(controller.store.entries(outcome.batch_id), "vial")]
    assert sorted(filled) == list(range(1, vials + 1))


async def test_abort_while_held_ends_in_aborted_with_disposition(
        controller: BatchController, simulator: Simulator, tip_lot: TipLot) -> None:
    simulator.world.faults.schedule(FaultSpec(name="hepa.fan_failure", at_vial=2))
    task = start_batch(controller, lot="L-ABORT", vials=10, operator="op.anna", tip_lot=tip_lot)
    await held(controller, task)
    await controller.command("Abort", "sup.bob", "fan failure; batch abandoned")
    outcome = await finish(task)
    assert outcome.state == "Aborted"
    assert outcome.disposition.verdict == NOT_SUITABLE
    assert any("not reconciled" in r["reason"] for r in outcome.disposition.reasons)


async def test_pump_silent_mid_dispense_makes_the_vial_uncertain_never_redispensed(
        site: SiteConfig, simulator: Simulator, tmp_path: Path, tip_lot: TipLot) -> None:
    slow = recipe_variant(tmp_path, fill_volume_ul="900.0", dispense_speed_ul_s="5.0", vial_count_min="1",
                          prime_volume_ul="0.0")
    async with controller_session(site, slow) as c:
        task = start_batch(c, lot="L-SILENT", vials=3, operator="op.anna", tip_lot=tip_lot)
        await wait_for(lambda: c.live.dispensing and c.batch_id and simulator.pump.busy() and
                       kinds(c.store.entries(c.batch_id), "intent", action="dispense", vial=2), what="vial 2 dispensing",
                       task=task)
        simulator.world.faults.inject("pump.silent")  # the pump stops answering while its plunger moves
        await held(c, task)
        entries = await record_of(c)
        assert kinds(entries, "vial", vial=2)[0].data["status"] == "uncertain"
        assert kinds(entries, "outcome", action="dispense", vial=2)[0].data["unknown"] is True
        await unhold_when_clear(c, simulator)
        outcome = await finish(task)
        entries = c.store.entries(outcome.batch_id)
    assert len(kinds(entries, "intent", action="dispense", vial=2)) == 1, "an unknown dispense is never retried"
    assert (outcome.accepted, outcome.uncertain) == (2, 1)
    assert outcome.disposition.reconciliation["unaccounted"] == 0
