"""What must not change during a batch: a UV lamp command written over OPC UA by someone else during the fill is an
interlock alarm; the controller switches the lamp off and holds, and the record says so."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fillfinish.batch.controller import TipLot
from fillfinish.config import SiteConfig
from fillfinish.machine.packml import State
from fillfinish.recipes.loader import load_recipe
from fillfinish.record.verify import verify
from fillfinish.session import controller_session
from sim.runner import Simulator

from fillfinish.line import _security
from hal.plc.driver import PlcDriver

from e2e_support import finish, kinds, record_of, start_batch, wait_for

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


async def test_lamp_written_on_during_fill_is_an_interlock(site: SiteConfig, simulator: Simulator, tip_lot: TipLot,
                                                           tmp_path: Path) -> None:
    text = (REPO / "recipes" / "fgf2.toml").read_text()
    for old, new in (("fill_volume_ul = 100.0", "fill_volume_ul = 900.0"), ("dispense_speed_ul_s = 80.0",
                     "dispense_speed_ul_s = 5.0"), ("vial_count_min = 10", "vial_count_min = 1")):
        text = text.replace(old, new)
    (tmp_path / "slow.toml").write_text(text)  # 180 s per vial: the fill lasts while the rogue client writes
    # someone else's OPC UA session on the PLC (an engineering tool with valid credentials): it writes the lamp
    # command behind the controller's back
    rogue = PlcDriver(site.plc.endpoint, dict(site.plc.nodes), security=_security(site))
    await rogue.connect()
    try:
        await _lamp_on_during_fill(site, simulator, tip_lot, tmp_path, rogue)
    finally:
        await rogue.close()


async def _lamp_on_during_fill(site: SiteConfig, simulator: Simulator, tip_lot: TipLot, tmp_path: Path,
                               rogue: PlcDriver) -> None:
    """The batch runs; `rogue` switches the lamp on mid-fill; the controller holds, switches it off, records it."""
    async with controller_session(site, load_recipe(tmp_path / "slow.toml")) as c:
        task = start_batch(c, lot="L-LAMP", vials=30, operator="op.anna", tip_lot=tip_lot)
        await wait_for(lambda: c.batch_id and kinds(c.store.entries(c.batch_id), "vial", vial=1),
                       what="the fill under way", task=task)
        await rogue.set_lamp(True)
        await wait_for(lambda: c.machine.state == State.Held, what="machine Held", task=task)
        await wait_for(lambda: not simulator.world.lamp.commanded, what="lamp off")
        entries = await record_of(c)
        alarm = kinds(entries, "alarm", source="lamp_unexpected")
        assert alarm and alarm[0].data["severity"] == "interlock"
        assert kinds(entries, "deviation", source="lamp_unexpected")
        assert kinds(entries, "safe_state", action="lamp_off")
        assert verify(c.store, c.batch_id).ok
        await c.command("Abort", "sup.bob", "lamp switched on by someone else during the fill")
        outcome = await finish(task)
        assert outcome.state == "Aborted" and outcome.disposition is not None and not outcome.disposition.suitable
