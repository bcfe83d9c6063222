"""Named, scriptable faults: injected now, at a simulated time, at a vial, or on a device's next command.

Emulators ask `active(name)` where the fault would bite (or `take(name)` for one-shot faults such as one garbled
reply). A fault file is TOML: `[[fault]] name = "hepa.fan_failure"  at_s = 120  duration_s = 60` (see FAULT_NAMES).
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# name -> what it does; the prefix before the dot is the device whose commands "on_next_command" waits for.
FAULT_NAMES: dict[str, str] = {
    "pump.plunger_overload": "the next plunger move stalls: error 9, sticky until re-initialisation",
    "pump.valve_overload": "the next valve move fails: error 10",
    "pump.silent": "the pump answers nothing while active",
    "pump.garbled": "the next reply is corrupted (one-shot)",
    "pump.line_gone": "the serial line is gone: the emulator closes its end of the pty",
    "balance.unstable": "the weight never settles: S answers S I, SI answers S D",
    "balance.overload": "the balance reports overload: S +",
    "plc.server_stop": "the PLC's OPC UA server stops for duration_s, then restarts",
    "hepa.pressure_drop": "HEPA differential pressure drops (leak, seal bypass)",
    "hepa.airflow_out_of_range": "downflow velocity falls out of 0.36-0.54 m/s",
    "hepa.fan_failure": "the HEPA fan stops: fan running false, fault true, pressure and airflow collapse",
    "particles.burst": "particle counts rise far above the grade A limits",
    "uv.lamp_failure": "the UV lamp fails: fault true, lamp off, no irradiance",
    "uv.low_irradiance": "the lamp gives 30 % of its output",
    "door.open": "the enclosure door opens (unlocked), with a particle burst",
    "positioner.jam": "the vial positioner jams: fault true, never in position",
}


class UnknownFault(ValueError):
    """A fault name that FAULT_NAMES does not list."""


@dataclass
class FaultSpec:
    """One scripted fault. With no trigger it is active from the moment it is added."""

    name: str
    at_s: float | None = None  # simulated seconds after the simulator started
    at_vial: int | None = None  # when the positioner is sent to this vial position
    on_next_command: bool = False  # when its device receives its next command
    duration_s: float | None = None  # simulated seconds it stays active; None = until cleared
    params: dict[str, Any] = field(default_factory=dict)
    armed_at: float | None = None  # simulated time it became active

    def __post_init__(self) -> None:
        if self.name not in FAULT_NAMES:
            allowed = ", ".join(sorted(FAULT_NAMES))
            raise UnknownFault(f"unknown fault {self.name!r}; allowed: {allowed}")
        for field_name, kinds, what in (("at_s", (int, float), "a number of seconds"),
                                        ("duration_s", (int, float), "a number of seconds"),
                                        ("at_vial", (int,), "a vial position (integer)")):
            value = getattr(self, field_name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kinds) or value < 0):
                raise UnknownFault(f"{self.name}: {field_name} = {value!r}; allowed: {what} >= 0")
        if not isinstance(self.on_next_command, bool):
            raise UnknownFault(f"{self.name}: on_next_command = {self.on_next_command!r}; allowed: true or false")

    @property
    def device(self) -> str:
        return self.name.split(".", 1)[0]


class FaultBook:
    """The simulator's set of scheduled and active faults, safe to use from several threads."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._start = now()
        self._lock = threading.Lock()
        self._specs: list[FaultSpec] = []

    # -- scripting ---------------------------------------------------------------------------------------------
    def schedule(self, spec: FaultSpec) -> FaultSpec:
        """Add a fault; one without any trigger is active at once."""
        with self._lock:
            if spec.at_s is None and spec.at_vial is None and not spec.on_next_command:
                spec.armed_at = self._now()
            self._specs.append(spec)
        return spec

    def inject(self, name: str, duration_s: float | None = None, **params: Any) -> FaultSpec:
        """Make `name` active now."""
        return self.schedule(FaultSpec(name=name, duration_s=duration_s, params=params))

    def clear(self, name: str | None = None) -> None:
        """Remove every fault called `name` (all faults when None)."""
        with self._lock:
            self._specs = [s for s in self._specs if name is not None and s.name != name]

    def load(self, path: Path) -> list[FaultSpec]:
        """Schedule the faults of a TOML fault file; raises ValueError naming the file and entry."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: cannot read fault file: {exc}") from exc
        specs = []
        for i, entry in enumerate(data.get("fault", [])):
            try:
                specs.append(self.schedule(FaultSpec(**entry)))
            except (TypeError, UnknownFault) as exc:
                raise ValueError(f"{path}: fault #{i + 1}: {exc}") from exc
        return specs

    # -- triggers ----------------------------------------------------------------------------------------------
    def notify_vial(self, position: int) -> None:
        """The positioner was sent to `position`: arm faults waiting for that vial."""
        with self._lock:
            for s in self._specs:
                if s.armed_at is None and s.at_vial == position:
                    s.armed_at = self._now()

    def notify_command(self, device: str) -> None:
        """`device` (pump, balance, plc, positioner, uv, door, hepa, particles) received a command."""
        with self._lock:
            for s in self._specs:
                if s.armed_at is None and s.on_next_command and s.device == device:
                    s.armed_at = self._now()

    # -- queries -----------------------------------------------------------------------------------------------
    def _live(self, spec: FaultSpec, now: float) -> bool:
        if spec.armed_at is None and spec.at_s is not None and now - self._start >= spec.at_s:
            spec.armed_at = self._start + spec.at_s
        if spec.armed_at is None:
            return False
        return spec.duration_s is None or now < spec.armed_at + spec.duration_s

    def active(self, name: str) -> bool:
        """True while a fault called `name` is in force."""
        now = self._now()
        with self._lock:
            return any(s.name == name and self._live(s, now) for s in self._specs)

    def take(self, name: str) -> bool:
        """For one-shot faults: True once if `name` is in force, and removes it."""
        now = self._now()
        with self._lock:
            for s in self._specs:
                if s.name == name and self._live(s, now):
                    self._specs.remove(s)
                    return True
        return False

    def active_names(self) -> list[str]:
        now = self._now()
        with self._lock:
            return sorted({s.name for s in self._specs if self._live(s, now)})
