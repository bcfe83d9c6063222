"""The positioner and the pump's housekeeping shared by prime and fill: home over the waste tray, refill the
syringe, re-initialise after a terminate, a fault or a restart. Every hardware call inside `recorder.action`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fillfinish.batch.faults import DeviceFault
from hal.dispenser.errors import PumpError

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController


async def go_home(c: BatchController, why: str) -> None:
    """Positioner to home (0): the tip over the waste tray, where priming and initialising may expel liquid."""
    async with c.recorder.action("position", vial=0, reason=why) as act:
        await c.move(0)
        act.result(vial=0)


async def refill(c: BatchController, need_ul: float, have_ul: float | None = None) -> None:
    """Draw from the reservoir when the syringe holds less than `need_ul` (filled to its capacity); `have_ul`: the
    syringe's contents just read by the caller (no other pump command since), else asked here."""
    have = await c.line.call(c.pump.volume_in_syringe_ul) if have_ul is None else have_ul
    if have + 1e-6 >= need_ul:
        return
    room = c.pump.capacity_ul - have
    async with c.recorder.action("aspirate", volume_ul=round(room, 3)) as act:
        got = await c.line.call(c.pump.draw, room, rate_ul_s=c.r.fill.aspirate_speed_ul_s)
        act.result(aspirated_ul=got)


async def ensure_pump_ready(c: BatchController) -> None:
    """Re-initialise the pump if a terminate, a pump fault or a restart left it needing it."""
    if c.live.pump_needs_init:
        await reinit_pump(c)
        c.live.pump_needs_init = False


async def reinit_pump(c: BatchController) -> None:
    """What is left in the syringe may have been exposed during the interruption, so it goes to the waste tray
    (positioner home), never back into the bulk and never into a vial; re-initialising then pushes nothing out."""
    await go_home(c, "empty the syringe to the waste tray before re-initialising the pump")
    try:
        async with c.recorder.action("empty_to_waste", reason="before re-initialisation"):
            await c.line.call(c.pump.empty_to_waste, rate_ul_s=c.r.fill.dispense_speed_ul_s)
    except PumpError:  # e.g. plunger overload: nothing moves until initialised; we are over the waste tray
        pass
    try:
        async with c.recorder.action("initialise_pump", reason="after terminate, fault or restart"):
            await c.line.call(c.pump.reinitialise)
    except PumpError as exc:
        raise DeviceFault(f"pump re-initialisation failed: {exc}") from exc
