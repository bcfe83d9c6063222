"""A session that ends while its batch still runs (its caller failed or left early) ends the run first: the run's own
cancellation makes the line safe while the devices are open, and the ports are free for the next controller."""

from __future__ import annotations

import asyncio

import pytest

from fillfinish.batch.controller import BatchController, TipLot
from fillfinish.config import SiteConfig
from fillfinish.recipes.loader import LoadedRecipe
from fillfinish.record.store import RecordStore
from fillfinish.session import controller_session
from sim.runner import Simulator

from e2e_support import kinds, record_of, start_batch, wait_for

pytestmark = pytest.mark.slow


class CallerFailed(Exception):
    """The test's stand-in for a caller that fails while its batch runs."""


async def test_leaving_a_session_under_a_running_batch_ends_the_run_safely(
        site: SiteConfig, fgf2: LoadedRecipe, simulator: Simulator, tip_lot: TipLot) -> None:
    task: "asyncio.Task[object] | None" = None
    with pytest.raises(CallerFailed):
        async with controller_session(site, fgf2) as c:
            task = start_batch(c, lot="L-LEAVE", vials=10, operator="op.anna", tip_lot=tip_lot)
            await wait_for(lambda: simulator.world.lamp.commanded, what="UV cycle running", task=task)
            raise CallerFailed
    assert task is not None and task.done()  # ended by the session, not left running on closed devices
    assert not simulator.world.lamp.commanded
    with RecordStore(site.database.url, create=False) as store:  # the safe state is in the record
        assert kinds(store.entries(c.batch_id), "safe_state", action="lamp_off")
    async with controller_session(site, fgf2) as again:  # the pump's and balance's ports were not taken back
        assert again.line.pump.link.is_open and again.line.balance.link.is_open


async def test_a_signal_whose_cancel_was_lost_still_ends_the_run_at_its_next_safe_point(
        controller: BatchController, simulator: Simulator, tip_lot: TipLot) -> None:
    """SIGTERM's handler acts at once (`shutdown_now`) and then cancels the run; on Python 3.11 that cancel can be
    swallowed inside `asyncio.wait_for`. Here it is never sent at all: the run must still end (as cancelled, which the
    batch service turns into the signal's exit) at its next safe point, with the lamp off, instead of running on."""
    task = start_batch(controller, lot="L-LOSTCANCEL", vials=10, operator="op.anna", tip_lot=tip_lot)
    await wait_for(lambda: simulator.world.lamp.commanded, what="UV cycle running", task=task)
    controller.shutdown_now("SIGTERM received: controller stopping")  # no task.cancel(): the cancel was lost
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=120)  # a hang guard only
    assert not simulator.world.lamp.commanded
    entries = await record_of(controller)
    assert kinds(entries, "shutdown") and kinds(entries, "safe_state", action="lamp_off")
