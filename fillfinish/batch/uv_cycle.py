"""UV-C exposure: lamp on only with the door closed, dose integrated from the UV sensor until the target is reached.

dose (mJ/cm2) = sum of irradiance (mW/cm2) x time (s), read from the subscribed sensor on the shared clock. Faults:
irradiance below the validated minimum for too long after warm-up, or the cycle running past its maximum time.
The lamp is switched off (and confirmed off) however the exposure ends.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable

from fillfinish.batch.recorder import BatchRecorder
from fillfinish.clock import Clock


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


def latest(plc: Any, signal: str) -> Any:
    """The latest subscribed value of `signal` (None if none yet)."""
    value = plc.snapshot().get(signal)
    return value[0] if isinstance(value, tuple) else value


async def _lamp(plc: Any, rec: BatchRecorder, clock: Clock, on: bool, timeout_s: float = 10.0,
                interrupted: Callable[[], str | None] = lambda: None) -> None:
    """Command the lamp and wait for its feedback, intent and outcome recorded. Switching on is refused, and a
    lamp coming on is switched off again, if the door is open or unlocked or anything else interrupts."""
    seq = rec.intent("lamp_on" if on else "lamp_off")
    if on:
        why = interrupted() or await _door_not_safe(plc)
        if why:
            rec.outcome("lamp_on", seq, False, error=why)
            raise UvCycleInterrupted(f"lamp not switched on: {why}")
    await plc.set_lamp(on)
    deadline = clock.now() + timeout_s
    while clock.now() < deadline:
        if on:
            why = interrupted() or await _door_not_safe(plc)
            if why:
                await plc.set_lamp(False)
                rec.outcome("lamp_on", seq, False, error=why, switched_off=True)
                raise UvCycleInterrupted(f"lamp switched off again: {why}")
        if bool(await plc.read("lamp_on")) == on:
            rec.outcome("lamp_on" if on else "lamp_off", seq, True, lamp_on=on)
            return
        await clock.asleep(0.2)
    rec.outcome("lamp_on" if on else "lamp_off", seq, False, error="no lamp feedback")
    raise UvCycleFault(f"lamp did not switch {'on' if on else 'off'} within {timeout_s:g} s")


async def _door_not_safe(plc: Any) -> str | None:
    """Why the door forbids UV (read from the PLC now, not from the subscription cache), or None."""
    closed, locked = await plc.read("door_closed"), await plc.read("door_locked")
    if not closed:
        return "door open"
    if not locked:
        return "door not locked"
    return None


async def run_uv_exposure(
    plc: Any,
    clock: Clock,
    rec: BatchRecorder,
    *,
    step: str,
    sensor: str,
    target_dose_mj_cm2: float,
    min_irradiance_mw_cm2: float,
    max_cycle_s: float,
    interrupted: Callable[[], str | None],
    progress: Callable[[float], None] = lambda fraction: None,
    sample_s: float = 1.0,
    warmup_grace_s: float = 120.0,
    low_irradiance_limit_s: float = 30.0,
    record_every_s: float = 30.0,
) -> UvResult:
    """Run one exposure to `target_dose_mj_cm2` at `sensor`; raise UvCycleFault / UvCycleInterrupted otherwise."""
    why = interrupted() or (None if await plc.read("door_closed") else "door open")
    if why:
        raise UvCycleInterrupted(f"the lamp may not be switched on: {why}")
    seq = rec.intent("door_lock", locked=True)
    await plc.set_door_lock(True)
    rec.outcome("door_lock", seq, True, locked=True)
    lamp_id = str(await plc.read("lamp_id"))
    hours = float(await plc.read("lamp_hours"))
    switches = int(await plc.read("lamp_switch_count"))
    cycle_id = f"{step.upper().replace('_', '-')}-{uuid.uuid4().hex[:12]}"
    start = clock.now()
    rec.write("uv_start", cycle_id=cycle_id, step=step, sensor=sensor, target_dose_mj_cm2=target_dose_mj_cm2,
              lamp_id=lamp_id, lamp_hours=round(hours, 3), lamp_switch_count=switches)
    dose, min_irr, low_since, last_t, last_irr, next_record = 0.0, float("inf"), None, start, 0.0, start
    lamp_confirmed_off = False
    try:
        await _lamp(plc, rec, clock, True, interrupted=interrupted)
        while dose < target_dose_mj_cm2:
            why = interrupted()
            if why:
                raise UvCycleInterrupted(f"{step} interrupted at {dose:.1f} of {target_dose_mj_cm2:g} mJ/cm2: {why}")
            await clock.asleep(sample_s)
            now = clock.now()
            irr = float(await plc.read(sensor))  # read now: a stalled subscription must not add a frozen value
            dose += (irr + last_irr) / 2.0 * (now - last_t)  # trapezoid: mW/cm2 x s = mJ/cm2
            last_t, last_irr = now, irr
            progress(min(1.0, dose / target_dose_mj_cm2))
            elapsed = now - start
            if elapsed > warmup_grace_s:
                min_irr = min(min_irr, irr)
                if irr < min_irradiance_mw_cm2:
                    low_since = now if low_since is None else low_since
                    if now - low_since >= low_irradiance_limit_s:
                        raise UvCycleFault(f"{step}: irradiance {irr:.3f} mW/cm2 below the validated minimum "
                                           f"{min_irradiance_mw_cm2:g} mW/cm2 for {now - low_since:.0f} s")
                else:
                    low_since = None
            if elapsed > max_cycle_s:
                raise UvCycleFault(f"{step}: {elapsed:.0f} s exceeds the maximum cycle time {max_cycle_s:g} s "
                                   f"({dose:.1f} of {target_dose_mj_cm2:g} mJ/cm2 delivered)")
            if now >= next_record:
                rec.write("measurement", signal=sensor, irradiance_mw_cm2=round(irr, 4), dose_mj_cm2=round(dose, 2),
                          cycle_id=cycle_id)
                next_record = now + record_every_s
        await _lamp(plc, rec, clock, False)
        lamp_confirmed_off = True
    finally:
        if not lamp_confirmed_off:  # safe state whatever happened: lamp off, said so in the record
            try:
                await plc.set_lamp(False)
                rec.write("safe_state", action="lamp_off", step=step, cycle_id=cycle_id)
            except Exception as exc:  # the original failure is the one to report; this one is recorded if possible
                try:
                    rec.write("exception", message=f"could not switch the lamp off: {exc}", step=step)
                except Exception:
                    pass
    end = clock.now()
    result = UvResult(cycle_id, step, sensor, start, end, dose, target_dose_mj_cm2,
                      min_irr if min_irr != float("inf") else 0.0, lamp_id, float(await plc.read("lamp_hours")),
                      int(await plc.read("lamp_switch_count")))
    rec.write("uv_cycle", **result.as_record())
    return result
