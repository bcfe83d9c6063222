"""Annex 1 8.18 hold times: a fill may not start when the UV cycle ended too long ago; the UV cycle is repeated."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fillfinish.batch.controller import TipLot
from fillfinish.config import SiteConfig
from fillfinish.machine.packml import State
from fillfinish.session import controller_session
from sim.runner import Simulator

from e2e_support import finish, kinds, record_of, start_batch, wait_for
from test_batch_faults import recipe_variant

pytestmark = pytest.mark.slow


async def test_expired_uv_hold_time_blocks_fill_until_uv_is_repeated(
        site: SiteConfig, simulator: Simulator, tmp_path: Path, tip_lot: TipLot) -> None:
    # 1200 s: the tip UV (~290 s) and the steps to prime fit with a wide margin even when a busy machine stretches
    # them in simulated time; the deliberate hold below outlasts it
    recipe = recipe_variant(tmp_path, uv_end_to_fill_start_s="1200.0")
    async with controller_session(site, recipe) as c:
        task = start_batch(c, lot="L-HOLDTIME", vials=10, operator="op.anna", tip_lot=tip_lot)
        await wait_for(lambda: simulator.world.lamp.commanded and c.phases.current is not None
                       and c.phases.current.value == "tip_sterilisation", what="tip UV running", task=task)
        await c.command("Hold", "op.anna", "stopper bowl jam")
        await wait_for(lambda: c.machine.state == State.Held, what="Held", task=task)
        await simulator.clock.asleep(1300.0)  # the held line waits past the 1200 s hold time (simulated time)
        await c.command("Unhold", "sup.bob", "jam cleared")
        # the tip step is redone, then prime is refused: the UV cycle ended more than 1200 s ago
        await wait_for(lambda: c.machine.state == State.Held, what="Held by the hold-time guard", task=task)
        entries = await record_of(c)
        holds = [e for e in kinds(entries, "state", to="Holding") if "8.18" in e.data["reason"]]
        assert holds and "UV cycle end to fill start" in holds[0].data["reason"]
        assert kinds(entries, "phase", event="repeat", phase="uv_cycle")
        await c.command("Unhold", "sup.bob", "repeat the UV cycle")
        outcome = await finish(task)
        assert len(kinds(c.store.entries(outcome.batch_id), "uv_cycle", step="uv_cycle")) == 2
    assert outcome.state == "Complete" and outcome.accepted == 10
