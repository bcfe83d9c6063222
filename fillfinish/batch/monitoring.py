"""Monitoring for one run (the environment monitor and the phase watch) and what an Unhold re-checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from fillfinish.batch.uv_cycle import latest
from fillfinish.monitor import EnvironmentMonitor, EnvLimits
from fillfinish.phase_watch import PhaseWatch
from hal.dispenser.errors import PumpError
from hal.plc.errors import PlcError

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController

log = structlog.get_logger("fillfinish.batch")


async def start_monitoring(c: BatchController) -> None:
    """Start the environment monitor and the phase watch, their callbacks going to the run's alarm handling."""
    c.monitor = EnvironmentMonitor(
        c.plc, EnvLimits.from_recipe(c.r.environment), c.clock,
        on_alarm=c.alarm_handling.on_alarm, on_clear=c.alarm_handling.on_clear,
        on_sample=c.alarm_handling.on_sample,
    )
    c.monitor.start()
    c.watch = PhaseWatch(c.plc, c.clock, lamp_allowed=lambda: c.live.lamp_allowed,
                         commanded_targets=lambda: c.live.commanded_targets, on_alarm=c.alarm_handling.on_alarm)
    c.watch.start()
    await c.recorder.awrite("monitoring", "system", event="started")


async def stop_monitoring(c: BatchController) -> None:
    """Stop both and wait for the safety tasks still running."""
    if c.monitor is not None:
        await c.monitor.stop()
    if c.watch is not None:
        await c.watch.stop()
    await c.safe.drain()


async def restore_line_guards(c: BatchController) -> None:
    """Before an Unhold (a person decided): take the line back on the PLC after its watchdog tripped (the trip
    is in the record as an alarm) and lock the door again if it was unlocked while closed."""
    plc = c.plc
    try:
        if latest(plc, "watchdog_tripped") or (c.watch and "plc_watchdog" in c.watch.active):
            await c.line.claim(c.batch_id)
            await c.line.guard.reset_alarm()
            if c.watch:
                c.watch.active.pop("plc_watchdog", None)
        if latest(plc, "door_closed") and not latest(plc, "door_locked"):
            async with c.recorder.action("door_lock", locked=True, reason="before unhold") as act:
                await plc.set_door_lock(True)
                act.result(locked=True)
            if c.watch:
                c.watch.active.pop("door_unlocked", None)
    except PlcError as exc:
        log.warning("batch.line_guards_not_restored", error=str(exc))


async def resume_checks(c: BatchController) -> list[str]:
    """What Unhold re-checks: every interlock, the environment, and the hold times still ahead."""
    problems: list[str] = []
    try:
        await c.line.call(c.pump.status)  # answers at all (an error code is cleared by re-initialising)
    except PumpError as exc:
        problems.append(f"pump does not answer: {exc}")
    # read the interlocks after the awaits, so nothing that changed meanwhile is missed
    await restore_line_guards(c)
    problems += list(c.monitor.problems()) if c.monitor else ["monitoring not running"]
    problems += c.watch.problems() if c.watch else []
    if not c.plc.connected:
        problems.append("PLC link down")
    if c.live.fill_start is not None:
        elapsed = c.clock.now() - c.live.fill_start
        limit = c.r.hold_times.fill_duration_max_s
        if elapsed > limit:
            problems.append(f"fill duration {elapsed:,.0f} s exceeds {limit:,.0f} s (Annex 1 8.18): stop the batch")
    return problems
