"""What must not change during a batch: a UV lamp command written over OPC UA by someone else during the fill is an
interlock alarm; the controller switches the lamp off and holds, and the record says so."""

from __future__ import annotations

import asyncio

import pytest
from asyncua import Client, ua

from fillfinish.batch.controller import TipLot
from fillfinish.config import SiteConfig
from fillfinish.machine.packml import State
from fillfinish.recipes.loader import LoadedRecipe
from fillfinish.record.verify import verify
from fillfinish.session import controller_session
from sim.runner import Simulator

from e2e_support import kinds, wait_for

pytestmark = pytest.mark.slow


async def test_lamp_written_on_during_fill_is_an_interlock(site: SiteConfig, fgf2: LoadedRecipe, simulator: Simulator,
                                                           tip_lot: TipLot) -> None:
    async with controller_session(site, fgf2) as c:
        task = asyncio.create_task(c.run_new(lot="L-LAMP", vials=40, operator="op.anna", tip_lot=tip_lot))
        await wait_for(lambda: c.batch_id and kinds(c.store.entries(c.batch_id), "vial", vial=1),
                       what="the fill under way", task=task)
        async with Client(simulator.plc.endpoint, timeout=5) as rogue:  # an anonymous OPC UA client
            await rogue.get_node("ns=2;s=UV.LampCommand").write_value(ua.DataValue(ua.Variant(True,
                                                                                             ua.VariantType.Boolean)))
        await wait_for(lambda: c.machine.state == State.Held, what="machine Held", task=task)
        await wait_for(lambda: not simulator.world.lamp.commanded, what="lamp off")
        entries = c.store.entries(c.batch_id)
        alarm = kinds(entries, "alarm", source="lamp_unexpected")
        assert alarm and alarm[0].data["severity"] == "interlock"
        assert kinds(entries, "deviation", source="lamp_unexpected")
        assert kinds(entries, "safe_state", action="lamp_off")
        assert verify(c.store, c.batch_id).ok
        await c.command("Abort", "sup.bob", "lamp switched on by someone else during the fill")
        outcome = await asyncio.wait_for(task, 60)
        assert outcome.state == "Aborted" and outcome.disposition is not None and not outcome.disposition.suitable
