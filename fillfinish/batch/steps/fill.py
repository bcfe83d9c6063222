"""fill: every planned vial positioned, tared, dispensed, check-weighed and judged, in the record vial by vial.

A vial held before its dispense is left unjudged and done again from its positioning after the unhold; a vial that
got liquid is judged (accepted, rejected or uncertain) and never dispensed again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fillfinish.batch.faults import DeviceFault
from fillfinish.batch.history import VialOutcome
from fillfinish.batch.steps.pump_care import ensure_pump_ready, refill
from fillfinish.machine.packml import State
from fillfinish.machine.phases import Phase
from hal.balance.errors import BalanceError
from hal.dispenser.errors import DispenseOutcomeUnknown, DispenseTerminated, PumpError
from hal.plc.errors import PlcError

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController


class FillStep:
    """The fill loop, bounded by the Annex 1 8.18 limit on the time from fill start to its end."""

    phase = Phase.fill

    def entered(self, c: BatchController) -> None:
        """The fill start: the running timer of the fill-duration limit."""
        c.live.fill_start = c.clock.now()

    async def run(self, c: BatchController) -> None:
        """Every vial not judged yet, from the first such one, with a safe point before each."""
        while (n := c.history.next_vial()) <= c.planned:
            await c.safe_point()
            await ensure_pump_ready(c)
            assert c.live.fill_start is not None
            elapsed = c.clock.now() - c.live.fill_start
            limit = c.r.hold_times.fill_duration_max_s
            if elapsed > limit:
                raise DeviceFault(f"fill duration {elapsed:,.0f} s exceeds {limit:,.0f} s (Annex 1 8.18)")
            await fill_vial(c, n)
            c.progress("fill", n, c.planned)


def _weigh(c: BatchController, n: int) -> bool:
    """The recipe's sampling plan: every vial, or the first, the last and every n-th."""
    plan = c.r.check_weigh
    return plan.plan == "every" or n in (1, c.planned) or n % int(plan.every_nth or 1) == 0


def judge(c: BatchController, n: int, status: str, reason: str = "", **data: Any) -> None:
    """Record the vial's verdict and count consecutive rejects (too many hold the batch).

    The verdict is committed in order but synced by the next durable entry, which is always queued and awaited
    before the line's next hardware action (that action's intent, or a hold's state change): a power loss in
    between can turn the verdict into an "uncertain" vial, never an accepted one (decision 0019, third amendment)."""
    c.recorder.post("vial", vial=n, status=status, reason=reason, durable_=False, **data)
    c.history.vials[n] = VialOutcome(n, status, reason)
    c.live.consecutive_rejects = 0 if status == "accepted" else c.live.consecutive_rejects + 1


async def fill_vial(c: BatchController, n: int) -> None:
    """Position, tare, dispense, check-weigh, judge one vial."""
    f = c.r.fill
    if c.live.consecutive_rejects >= c.r.check_weigh.consecutive_rejects_hold:
        raise DeviceFault(f"{c.live.consecutive_rejects} consecutive vials rejected")
    weigh = _weigh(c, n)
    have_ul = c.pump.reported_volume_ul()  # the last dispense's fresh position report, when nothing moved since
    if have_ul is None:
        have_ul = await c.line.call(c.pump.volume_in_syringe_ul)  # a question to the pump: nothing moves
    enough = have_ul + 1e-6 >= f.fill_volume_ul
    async with c.recorder.action("position", vial=n) as act:
        await c.move(n)
        act.result(vial=n)
        if not weigh and enough:  # the dispense intent follows at once (no tare, no refill, no wait between)
            act.synced_by_next()
    if weigh:
        tare = await c.line.call(c.balance.tare)
        await c.recorder.awrite("measurement", signal="tare", vial=n, value=tare.value, unit=tare.unit)
    await refill(c, f.fill_volume_ul, have_ul)
    if c.machine.state != State.Execute:
        return  # held (or stopping) before the dispense: the vial is redone from its positioning
    if not await _dispense(c, n, judged_next=not weigh):
        return
    if not weigh:
        judge(c, n, "accepted", "not weighed (sampling plan)", weighed=False)
        return
    await _check_weigh(c, n)


async def _dispense(c: BatchController, n: int, *, judged_next: bool) -> bool:
    """The vial's dispense; False when it was terminated (the vial is rejected, the batch goes on to hold).
    `judged_next`: the caller judges the vial right after a good dispense (its verdict syncs the outcome)."""
    f = c.r.fill
    try:
        async with c.recorder.action("dispense", vial=n, volume_ul=f.fill_volume_ul) as act:
            c.live.dispensing = True
            try:
                delivered = await c.line.call(c.pump.dispense, f.fill_volume_ul, rate_ul_s=f.dispense_speed_ul_s,
                                              inhibit=c.live.inhibit)
            except DispenseTerminated as exc:
                act.failed(str(exc), vial=n, delivered_ul=exc.delivered_ul)
                raise
            except DispenseOutcomeUnknown as exc:
                act.failed(str(exc), vial=n, unknown=True)
                raise
            except PumpError as exc:
                act.failed(f"{type(exc).__name__}: {exc}", vial=n)
                raise
            finally:
                c.live.dispensing = False
            act.result(vial=n, delivered_ul=delivered)
            if judged_next:
                act.synced_by_next()
    except DispenseTerminated as exc:
        judge(c, n, "rejected", f"dispense interrupted: {c.live.hold_cause or exc}", delivered_ul=exc.delivered_ul)
        c.live.pump_needs_init = True
        return False
    except DispenseOutcomeUnknown as exc:
        judge(c, n, "uncertain", f"dispense outcome unknown: {exc}")
        c.live.pump_needs_init = True
        raise DeviceFault(f"pump: dispense outcome unknown at vial {n}: {exc}") from exc
    except PumpError as exc:  # the pump stopped with an error mid-move: the vial got an unknown part
        judge(c, n, "rejected", f"dispense failed: {type(exc).__name__}: {exc}")
        c.live.pump_needs_init = True
        raise DeviceFault(f"pump fault at vial {n}: {type(exc).__name__}: {exc}") from exc
    return True


async def _check_weigh(c: BatchController, n: int) -> None:
    """Weigh the dispensed vial and judge it against the recipe's tolerance."""
    f = c.r.fill
    try:
        reading = await c.line.call(c.balance.weigh_stable, 10.0)
    except (BalanceError, PlcError) as exc:  # dispensed but not checked: rejected, never dispensed again
        judge(c, n, "rejected", f"check-weigh failed: {type(exc).__name__}: {exc}", weighed=False)
        raise DeviceFault(f"balance fault at vial {n}: {type(exc).__name__}: {exc}") from exc
    expected_g = f.fill_volume_ul / 1000.0 * f.density_g_ml
    tol_g = (expected_g * f.tolerance_percent / 100.0) if f.tolerance_percent else \
        float(f.tolerance_ul or 0) / 1000.0 * f.density_g_ml
    net = float(reading.value)
    ok = abs(net - expected_g) <= tol_g
    judge(c, n, "accepted" if ok else "rejected", "" if ok else "fill weight out of tolerance", weighed=True,
          net_g=round(net, 5), expected_g=round(expected_g, 5), tolerance_g=round(tol_g, 5),
          volume_ul=round(net / f.density_g_ml * 1000.0, 2))
