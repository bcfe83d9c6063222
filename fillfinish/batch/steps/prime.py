"""prime: purge the fluid path to the waste tray (tip at home, no vial in position) before the first vial."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fillfinish.batch.faults import DeviceFault
from fillfinish.batch.steps.pump_care import ensure_pump_ready, go_home, refill
from fillfinish.machine.phases import Phase
from hal.dispenser.errors import PumpError

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController


class PrimeStep:
    """Prime the recipe's volume to waste; a failure re-initialises the pump before anything else moves."""

    phase = Phase.prime

    async def run(self, c: BatchController) -> None:
        """Home, refill, prime; a terminated, failed or unknown prime still went to waste."""
        await ensure_pump_ready(c)
        f = c.r.fill
        if f.prime_volume_ul <= 0:
            return
        await go_home(c, "prime to the waste tray")
        try:
            async with c.recorder.action("prime", volume_ul=f.prime_volume_ul) as act:
                await refill(c, f.prime_volume_ul)
                c.live.dispensing = True
                try:
                    delivered = await c.line.call(c.pump.prime, f.prime_volume_ul, rate_ul_s=f.dispense_speed_ul_s,
                                                  inhibit=c.live.inhibit)
                finally:
                    c.live.dispensing = False
                act.result(delivered_ul=delivered)
        except PumpError as exc:  # to waste anyway; the pump is re-initialised before the next move
            c.live.pump_needs_init = True
            raise DeviceFault(f"prime did not complete: {exc}") from exc

    def entered(self, c: BatchController) -> None:
        """Nothing to note."""
