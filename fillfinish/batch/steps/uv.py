"""The UV steps: the enclosure's UV-C cycle and the dispensing tips' sterilisation (pre-sterilised lot, UV, or
both). The lamp is allowed on only inside these steps; the safe-state component switches it off however they end."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Callable

from fillfinish.batch.faults import DeviceFault
from fillfinish.batch.uv_cycle import UvResult, run_uv_exposure
from fillfinish.machine.phases import Phase

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController


async def expose(c: BatchController, step: str, sensor: str, target_mj_cm2: float,
                 progress: Callable[[float], None]) -> UvResult:
    """One UV exposure to `target_mj_cm2` at `sensor`, with the lamp allowed on only while it runs."""
    uv = c.r.uv
    c.live.lamp_off_confirmed = False
    c.live.lamp_allowed = True
    try:
        result = await run_uv_exposure(
            c.plc, c.clock, c.recorder, step=step, sensor=sensor, target_dose_mj_cm2=target_mj_cm2,
            min_irradiance_mw_cm2=uv.min_irradiance_mw_cm2, max_cycle_s=uv.max_cycle_s,
            interrupted=c.interrupted, safe_lamp_off=c.safe.lamp_off, progress=progress,
        )
    finally:
        c.live.lamp_allowed = False
    c.live.lamp_off_confirmed = True
    c.live.uv[step] = result
    return result


class UvCycleStep:
    """uv_cycle: the enclosure's UV-C exposure to the recipe's target dose."""

    phase = Phase.uv_cycle

    async def run(self, c: BatchController) -> None:
        """Expose; the end time starts the Annex 1 8.18 hold time to fill start."""
        result = await expose(c, "uv_cycle", "uv_ref_mw_cm2", c.r.uv.target_dose_mj_cm2,
                              lambda f: self._progress(c, f))
        c.live.uv_end = result.end

    @staticmethod
    def _progress(c: BatchController, fraction: float) -> None:
        """The dose so far, shown live on the console and the OPC UA tags."""
        c.live.uv_live = fraction * c.r.uv.target_dose_mj_cm2
        c.progress("UV cycle", fraction, 1.0)

    def entered(self, c: BatchController) -> None:
        """Nothing to note."""


class TipStep:
    """tip_sterilisation: a pre-sterilised tip lot checked and recorded, and/or a UV exposure of the tips."""

    phase = Phase.tip_sterilisation

    async def run(self, c: BatchController) -> None:
        """The recipe's tip method; its end starts the hold time sterilised tips to use."""
        method = c.r.tips.method
        if method in ("presterilised", "uv_and_presterilised"):
            self._check_lot(c)
        if method in ("uv", "uv_and_presterilised"):
            await expose(c, "tip_uv", "uv_tip_mw_cm2", float(c.r.tips.uv_target_dose_mj_cm2 or 0.0),
                         lambda f: c.progress("tip UV", f, 1.0))
        c.live.tips_done = c.clock.now()

    @staticmethod
    def _check_lot(c: BatchController) -> None:
        """The pre-sterilised lot must be given and in date; recorded with its sterilisation cycle."""
        lot = c.tip_lot
        if lot is None:
            raise DeviceFault("the recipe requires a pre-sterilised tip lot and none was given")
        today = dt.datetime.fromtimestamp(c.clock.now(), dt.UTC).date().isoformat()
        if lot.expiry < today:
            raise DeviceFault(f"tip lot {lot.lot} expired on {lot.expiry}")
        c.recorder.post("tip_step", method="presterilised_lot", lot=lot.lot,
                        sterilisation_cycle_id=lot.sterilisation_cycle_id, expiry=lot.expiry)

    def entered(self, c: BatchController) -> None:
        """Nothing to note."""
