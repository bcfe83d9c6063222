"""UV-C exposure: lamp on only with the door closed, dose integrated from the UV sensor until the target is reached.

dose (mJ/cm2) = sum of irradiance (mW/cm2) x time (s), read from the subscribed sensor on the shared clock. Faults:
irradiance below the validated minimum for too long after warm-up, or the cycle running past its maximum time.
The lamp is switched off (and confirmed off) however the exposure ends.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from collections.abc import Awaitable
from typing import Any, Callable

from fillfinish.batch.recorder import BatchRecorder
from fillfinish.clock import Clock
from hal.plc.base import Plc


class UvCycleFault(RuntimeError):
    """The exposure failed (low irradiance, too long, lamp did not switch): the step must be repeated."""


class UvCycleInterrupted(RuntimeError):
    """An interlock interrupted the exposure (door opened, hold): the step must be repeated."""


@dataclass
class UvResult:
    """What the record keeps of one exposure."""

    cycle_id: str
    step: str  # uv_cycle | tip_uv
    sensor: str
    start: float
    end: float
    dose_mj_cm2: float
    target_dose_mj_cm2: float
    min_irradiance_mw_cm2: float
    lamp_id: str
    lamp_hours: float
    lamp_switch_count: int

    def as_record(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def latest(plc: Plc, signal: str) -> Any:
    """The latest subscribed value of `signal` (None if none yet)."""
    value = plc.snapshot().get(signal)
    return value[0] if isinstance(value, tuple) else value


SafeLampOff = Callable[..., Awaitable[Any]]
"""safe_lamp_off(why, **where): the safe-state component's lamp off (fillfinish/batch/safe_state.py)."""


async def _lamp(plc: Plc, rec: BatchRecorder, clock: Clock, on: bool, safe_lamp_off: SafeLampOff,
                timeout_s: float = 10.0, interrupted: Callable[[], str | None] = lambda: None) -> None:
    """Command the lamp and wait for its feedback, intent and outcome recorded. Switching on is refused, and a
    lamp coming on is switched off again (the safe state), if the door is open or unlocked or anything else
    interrupts."""
    async with rec.action("lamp_on" if on else "lamp_off") as act:
        if on:
            why = interrupted() or await _door_not_safe(plc)
            if why:
                act.failed(why)
                raise UvCycleInterrupted(f"lamp not switched on: {why}")
        await plc.set_lamp(on)
        deadline = clock.now() + timeout_s
        while clock.now() < deadline:
            if on:
                why = interrupted() or await _door_not_safe(plc)
                if why:
                    await safe_lamp_off(why)
                    act.failed(why, switched_off=True)
                    raise UvCycleInterrupted(f"lamp switched off again: {why}")
            if bool(await plc.read("lamp_on")) == on:
                act.result(lamp_on=on)
                return
            await clock.asleep(0.2)
        act.failed("no lamp feedback")
        raise UvCycleFault(f"lamp did not switch {'on' if on else 'off'} within {timeout_s:g} s")


async def _door_not_safe(plc: Plc) -> str | None:
    """Why the door forbids UV (read from the PLC now, not from the subscription cache), or None."""
    closed, locked = await plc.read("door_closed"), await plc.read("door_locked")
    if not closed:
        return "door open"
    if not locked:
        return "door not locked"
    return None


@dataclass
class Exposure:
    """What one exposure is asked to do and how it is watched (limits in s, mW/cm2, mJ/cm2)."""

    step: str
    sensor: str
    target_dose_mj_cm2: float
    min_irradiance_mw_cm2: float
    max_cycle_s: float
    sample_s: float = 1.0
    warmup_grace_s: float = 120.0
    low_irradiance_limit_s: float = 30.0
    record_every_s: float = 30.0


async def run_uv_exposure(
    plc: Plc,
    clock: Clock,
    rec: BatchRecorder,
    *,
    step: str,
    sensor: str,
    target_dose_mj_cm2: float,
    min_irradiance_mw_cm2: float,
    max_cycle_s: float,
    interrupted: Callable[[], str | None],
    safe_lamp_off: SafeLampOff,
    progress: Callable[[float], None] = lambda fraction: None,
    **timing: float,
) -> UvResult:
    """Run one exposure to `target_dose_mj_cm2` at `sensor`; raise UvCycleFault / UvCycleInterrupted otherwise.
    `timing`: sample_s, warmup_grace_s, low_irradiance_limit_s, record_every_s (see Exposure)."""
    ex = Exposure(step, sensor, target_dose_mj_cm2, min_irradiance_mw_cm2, max_cycle_s, **timing)
    why = interrupted() or (None if await plc.read("door_closed") else "door open")
    if why:
        raise UvCycleInterrupted(f"the lamp may not be switched on: {why}")
    async with rec.action("door_lock", locked=True) as act:
        await plc.set_door_lock(True)
        act.result(locked=True)
    lamp_id = str(await plc.read("lamp_id"))
    hours = float(await plc.read("lamp_hours"))
    switches = int(await plc.read("lamp_switch_count"))
    cycle_id = f"{step.upper().replace('_', '-')}-{uuid.uuid4().hex[:12]}"
    start = clock.now()
    await rec.awrite("uv_start", cycle_id=cycle_id, step=step, sensor=sensor, target_dose_mj_cm2=target_dose_mj_cm2,
                     lamp_id=lamp_id, lamp_hours=round(hours, 3), lamp_switch_count=switches)
    lamp_confirmed_off = False
    try:
        await _lamp(plc, rec, clock, True, safe_lamp_off, interrupted=interrupted)
        dose, min_irr = await _integrate(plc, clock, rec, ex, cycle_id, start, interrupted, progress)
        await _lamp(plc, rec, clock, False, safe_lamp_off)
        lamp_confirmed_off = True
    finally:
        if not lamp_confirmed_off:  # safe state whatever happened: lamp off, said so in the record
            await safe_lamp_off(f"{step} did not end normally", step=step, cycle_id=cycle_id)
    result = UvResult(cycle_id, step, sensor, start, clock.now(), dose, target_dose_mj_cm2, min_irr, lamp_id,
                      float(await plc.read("lamp_hours")), int(await plc.read("lamp_switch_count")))
    await rec.awrite("uv_cycle", **result.as_record())
    return result


async def _integrate(plc: Plc, clock: Clock, rec: BatchRecorder, ex: Exposure, cycle_id: str, start: float,
                     interrupted: Callable[[], str | None],
                     progress: Callable[[float], None]) -> tuple[float, float]:
    """Integrate the dose until the target; returns (dose mJ/cm2, lowest irradiance after warm-up mW/cm2)."""
    dose, min_irr, low_since, last_t, last_irr, next_record = 0.0, float("inf"), None, start, 0.0, start
    while dose < ex.target_dose_mj_cm2:
        why = interrupted()
        if why:
            raise UvCycleInterrupted(f"{ex.step} interrupted at {dose:.1f} of {ex.target_dose_mj_cm2:g} mJ/cm2: {why}")
        await clock.asleep(ex.sample_s)
        now = clock.now()
        irr = float(await plc.read(ex.sensor))  # read now: a stalled subscription must not add a frozen value
        dose += (irr + last_irr) / 2.0 * (now - last_t)  # trapezoid: mW/cm2 x s = mJ/cm2
        last_t, last_irr = now, irr
        progress(min(1.0, dose / ex.target_dose_mj_cm2))
        elapsed = now - start
        if elapsed > ex.warmup_grace_s:
            min_irr = min(min_irr, irr)
            low_since = (low_since if low_since is not None else now) if irr < ex.min_irradiance_mw_cm2 else None
            if low_since is not None and now - low_since >= ex.low_irradiance_limit_s:
                raise UvCycleFault(f"{ex.step}: irradiance {irr:.3f} mW/cm2 below the validated minimum "
                                   f"{ex.min_irradiance_mw_cm2:g} mW/cm2 for {now - low_since:.0f} s")
        if elapsed > ex.max_cycle_s:
            raise UvCycleFault(f"{ex.step}: {elapsed:.0f} s exceeds the maximum cycle time {ex.max_cycle_s:g} s "
                               f"({dose:.1f} of {ex.target_dose_mj_cm2:g} mJ/cm2 delivered)")
        if now >= next_record:
            rec.post("measurement", signal=ex.sensor, irradiance_mw_cm2=round(irr, 4), dose_mj_cm2=round(dose, 2),
                     cycle_id=cycle_id)
            next_record = now + ex.record_every_s
    return dose, (min_irr if min_irr != float("inf") else 0.0)
