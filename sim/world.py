"""One physical world for every emulator: UV lamp and dose, door, HEPA air, particles, vial positioner, liquid.

State that changes with time is computed from the shared SimClock when asked (lamp warm-up, lamp hours, positioner
motion, balance settling, particle samples), so no emulator needs its own timer. All methods are thread-safe: the
serial emulators run in threads, the PLC server in an asyncio loop.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass

from sim.clock import SimClock
from sim.faults import FaultBook

# Grade A particle concentrations at rest (particles/m3), well under the 3,520 / 29 limits.
# Grade A at rest: a few 0.5 um particles, no 5 um ones (a single 5 um count in 1 ft3 is already 35/m3 > 29, so any
# background there would make random excursions). A burst (door opened, fault) is far above both action limits.
AT_REST_PER_M3 = {"0.5um": 60.0, "5um": 0.0}
BURST_PER_M3 = {"0.5um": 24_000.0, "5um": 120.0}


@dataclass
class WorldSettings:
    """Physical constants of the simulated machine (defaults: a small enclosed filler)."""

    lamp_id: str = "UVC-254-0007"
    lamp_hours: float = 1500.0  # hours on the lamp at simulator start
    lamp_switch_count: int = 420
    lamp_rated_hours: float = 9000.0
    irradiance_new_mw_cm2: float = 1.20  # at the reference point, new lamp, warmed up
    tip_factor: float = 0.70  # tip station irradiance / reference point irradiance
    lamp_warmup_s: float = 60.0  # to 90 % output (first-order rise)
    hepa_dp_pa: float = 125.0
    downflow_m_s: float = 0.45
    particle_sample_s: float = 60.0  # one sample per minute at 28.3 L/min (1 ft3)
    sample_flow_l_min: float = 28.6  # the counter is set a little above the 28.3 L/min (1 ft3/min) minimum
    positioner_move_s: float = 0.8  # index time per move, settled
    positions: int = 5000  # vial positions the infeed can present
    vial_tare_g: float = 3.20  # mean empty 2R vial
    density_g_ml: float = 1.000
    balance_settle_s: float = 1.5
    balance_noise_g: float = 0.00003
    balance_capacity_g: float = 220.0
    seed: int = 20261125


@dataclass
class Lamp:
    commanded: bool = False
    on_since: float | None = None
    hours_at_start: float = 0.0
    hours_accumulated_s: float = 0.0
    switch_count: int = 0


@dataclass
class Positioner:
    target: int = 0
    current: int = 0
    arrive_at: float = 0.0
    moves: int = 0


@dataclass
class ParticleSample:
    seq: int
    time: float
    per_m3_0_5um: float
    per_m3_5um: float
    flow_l_min: float


@dataclass
class DispenseEvent:
    time: float
    position: int | None  # None = spilled (no vial in position)
    volume_ul: float


class World:
    """The simulated machine's physics on one SimClock, with its FaultBook."""

    def __init__(self, clock: SimClock, settings: WorldSettings | None = None) -> None:
        self.clock = clock
        self.s = settings or WorldSettings()
        self.faults = FaultBook(clock.now)
        self.start = clock.now()
        self._lock = threading.RLock()
        self._rng = random.Random(self.s.seed)
        self.lamp = Lamp(hours_at_start=self.s.lamp_hours, switch_count=self.s.lamp_switch_count)
        self.door_lock_commanded = True
        self.positioner = Positioner()
        self.vials: dict[int, float] = {}  # position -> uL received
        self.dispensed: list[DispenseEvent] = []
        self.spilled_ul = 0.0
        self._balance_changed = self.start
        self._samples: list[ParticleSample] = []
        self._burst_until = -math.inf
        self._door_was_open = False

    def now(self) -> float:
        return self.clock.now()

    # -- UV lamp -------------------------------------------------------------------------------------------------
    def set_lamp(self, on: bool) -> None:
        """The PLC's lamp command output."""
        self.faults.notify_command("uv")
        with self._lock:
            now = self.now()
            if on and not self.lamp.commanded:
                self.lamp.switch_count += 1
                self.lamp.on_since = now
            elif not on and self.lamp.commanded and self.lamp.on_since is not None:
                self.lamp.hours_accumulated_s += now - self.lamp.on_since
                self.lamp.on_since = None
            self.lamp.commanded = on

    def lamp_fault(self) -> bool:
        return self.faults.active("uv.lamp_failure")

    def lamp_on(self) -> bool:
        """Lamp feedback: commanded and not failed."""
        with self._lock:
            return self.lamp.commanded and not self.lamp_fault()

    def lamp_hours(self) -> float:
        with self._lock:
            running = self.now() - self.lamp.on_since if self.lamp.on_since is not None else 0.0
            return self.lamp.hours_at_start + (self.lamp.hours_accumulated_s + running) / 3600.0

    def irradiance_ref(self) -> float:
        """UV irradiance at the reference (worst-case) point, mW/cm2: ageing, warm-up, faults."""
        with self._lock:
            if not self.lamp_on() or self.lamp.on_since is None:
                return 0.0
            ageing = max(0.0, 1.0 - 0.25 * self.lamp_hours() / self.s.lamp_rated_hours)
            warm = 1.0 - math.exp(-(self.now() - self.lamp.on_since) * 2.3 / self.s.lamp_warmup_s)
            value = self.s.irradiance_new_mw_cm2 * ageing * warm
            if self.faults.active("uv.low_irradiance"):
                value *= 0.30
            return value

    def irradiance_tip(self) -> float:
        """UV irradiance at the dispensing-tip station, mW/cm2."""
        return self.irradiance_ref() * self.s.tip_factor

    # -- door ----------------------------------------------------------------------------------------------------
    def door_closed(self) -> bool:
        return not self.faults.active("door.open")

    def door_locked(self) -> bool:
        return self.door_closed() and self.door_lock_commanded

    def set_door_lock(self, locked: bool) -> None:
        self.faults.notify_command("door")
        self.door_lock_commanded = locked

    # -- HEPA ----------------------------------------------------------------------------------------------------
    def hepa_fan_running(self) -> bool:
        return not self.faults.active("hepa.fan_failure")

    def hepa_fault(self) -> bool:
        return self.faults.active("hepa.fan_failure")

    def hepa_dp_pa(self) -> float:
        with self._lock:
            noise = self._rng.gauss(0.0, 0.8)
        if not self.hepa_fan_running():
            return 4.0 + noise * 0.2
        if self.faults.active("hepa.pressure_drop"):
            return 0.35 * self.s.hepa_dp_pa + noise
        return self.s.hepa_dp_pa + noise

    def downflow_m_s(self) -> float:
        with self._lock:
            noise = self._rng.gauss(0.0, 0.005)
        if not self.hepa_fan_running():
            return 0.03 + abs(noise)
        if self.faults.active("hepa.airflow_out_of_range"):
            return 0.26 + noise
        return self.s.downflow_m_s + noise

    # -- particles -----------------------------------------------------------------------------------------------
    def _burst(self, t: float) -> bool:
        return self.faults.active("particles.burst") or self.faults.active("door.open") or t < self._burst_until

    def particle_samples(self) -> list[ParticleSample]:
        """Every completed sample so far (one per sample interval), generated lazily in order."""
        with self._lock:
            now = self.now()
            if self.faults.active("door.open"):
                self._door_was_open = True
            elif self._door_was_open:  # air takes a few minutes to recover after the door closes
                self._door_was_open = False
                self._burst_until = now + 180.0
            due = int((now - self.start) // self.s.particle_sample_s)
            while len(self._samples) < due:
                seq = len(self._samples) + 1
                t = self.start + seq * self.s.particle_sample_s
                volume_m3 = self.s.sample_flow_l_min * self.s.particle_sample_s / 60.0 / 1000.0
                level = BURST_PER_M3 if self._burst(t) else AT_REST_PER_M3
                counts = [self._poisson(level[k] * volume_m3) / volume_m3 for k in ("0.5um", "5um")]
                flow = self.s.sample_flow_l_min + self._rng.gauss(0.0, 0.05)
                self._samples.append(ParticleSample(seq, t, round(counts[0], 1), round(counts[1], 1), round(flow, 2)))
            return list(self._samples)

    def latest_particle_sample(self) -> ParticleSample | None:
        samples = self.particle_samples()
        return samples[-1] if samples else None

    def particle_samples_after(self, seq: int) -> list[ParticleSample]:
        """The completed samples with a sequence number above `seq`, in order (what a PLC has not published yet)."""
        samples = self.particle_samples()
        return samples[max(0, seq) :]

    def next_change_at(self) -> float:
        """Simulated time of the next change the world will make on its own (positioner arrival, particle sample
        due), so a publisher can wake exactly then instead of on a fixed real-time tick."""
        with self._lock:
            due = self.start + (len(self._samples) + 1) * self.s.particle_sample_s
            if self.now() < self.positioner.arrive_at:  # a move under way (a jammed one has no arrival to wait for)
                due = min(due, self.positioner.arrive_at)
            return due

    def _poisson(self, lam: float) -> int:
        if lam > 50:
            return max(0, round(self._rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self._rng.random()
            if p <= limit:
                return k
            k += 1

    # -- vial positioner -----------------------------------------------------------------------------------------
    def move_positioner(self, target: int) -> bool:
        """Command a move to vial position `target` (1..positions; 0 = home, the tip over the waste tray); False if
        out of range."""
        self.faults.notify_command("positioner")
        if not 0 <= target <= self.s.positions:
            return False
        if target:
            self.faults.notify_vial(target)
        with self._lock:
            now = self.now()
            self.positioner.target = target
            self.positioner.arrive_at = now + (self.s.positioner_move_s if target != self.positioner.current else 0.0)
            self.positioner.moves += 1
            self._balance_changed = self.positioner.arrive_at
        wake = getattr(self.clock, "wake", None)
        if wake is not None and self.positioner.arrive_at > now:
            wake(self.positioner.arrive_at)  # on a shared timeline a poller's pause ends at the arrival
        return True

    def stop_positioner(self) -> None:
        """Stop the positioner where it is (the PLC's safe stop): the move ends at the current position."""
        current, _in_position = self.positioner_state()
        with self._lock:
            self.positioner.target = current
            self.positioner.arrive_at = self.now()

    def positioner_fault(self) -> bool:
        return self.faults.active("positioner.jam")

    def positioner_state(self) -> tuple[int, bool]:
        """(current position, in position)."""
        with self._lock:
            if self.positioner_fault():
                return self.positioner.current, False
            if self.now() >= self.positioner.arrive_at:
                self.positioner.current = self.positioner.target
                return self.positioner.current, True
            return self.positioner.current, False

    # -- liquid, vials and the balance under the fill position ---------------------------------------------------
    def dispense(self, volume_ul: float) -> DispenseEvent:
        """Liquid left the tip: into the vial in position, or spilled (waste tray at home, or no vial in position)."""
        position, in_position = self.positioner_state()
        with self._lock:
            target = position if in_position and position > 0 else None
            if target is None:
                self.spilled_ul += volume_ul
            else:
                self.vials[target] = self.vials.get(target, 0.0) + volume_ul
            event = DispenseEvent(self.now(), target, volume_ul)
            self.dispensed.append(event)
            self._balance_changed = self.now()
            return event

    def vial_tare_g(self, position: int) -> float:
        """Empty weight of the vial at `position` (deterministic per position)."""
        return self.s.vial_tare_g + random.Random(self.s.seed * 7919 + position).gauss(0.0, 0.04)

    def balance_gross_g(self) -> tuple[float, bool]:
        """(gross weight on the pan in g, stable?) for the vial in position (empty pan when none)."""
        position, in_position = self.positioner_state()
        with self._lock:
            if in_position and position > 0:
                grams = self.vial_tare_g(position) + self.vials.get(position, 0.0) / 1000.0 * self.s.density_g_ml
            else:
                grams = 0.0
            settled = self.now() - self._balance_changed >= self.s.balance_settle_s
            stable = settled and in_position and not self.faults.active("balance.unstable")
            noise = self._rng.gauss(0.0, self.s.balance_noise_g if stable else 0.002)
            return grams + noise, stable
