"""CavroPump's set-up commands: initialisation (Z/Y), resolution (N0/N1) and speeds (V, v, c), each waited ready."""

from __future__ import annotations

from typing import Any

from hal.dispenser.errors import PumpUsageError
from hal.dispenser.protocol import RESOLUTIONS
from hal.dispenser.pump_host import PumpHost


def _int_in(name: str, value: Any, low: int, high: int) -> int:
    """`value` if it is an integer in low..high, else PumpUsageError naming `name` (nothing sent)."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise PumpUsageError(f"{name} must be an integer {low}..{high}, got {value!r}")
    return value


class PumpSetup(PumpHost):
    """Mixin of CavroPump (state and the command layer in hal/dispenser/driver.py)."""

    init_timeout_s: float
    move_safety: float
    valve_timeout_s: float
    log: Any

    def initialise(self, force: int = 0, ccw: bool = False, in_port: int = 0, out_port: int = 0) -> None:
        """Z (valve homes clockwise) or Y (counter-clockwise), wait ready, then set resolution and top speed."""
        _int_in("force", force, 0, 2)
        _int_in("in_port", in_port, 0, 12)
        _int_in("out_port", out_port, 0, 12)
        text = f"{'Y' if ccw else 'Z'}{force}" + (f",{in_port},{out_port}" if in_port or out_port else "")
        self.log.info("pump.initialise", command=text)
        self.command(text + "R")
        self.wait_ready(self.init_timeout_s / self.move_safety, "initialisation")
        self.command(f"{self.resolution}V{self.top_speed}R", retry=True)
        self.wait_ready(self.valve_timeout_s, "settings")

    def set_resolution(self, resolution: str) -> None:
        """N0 (full steps of the stroke) or N1 (8x microsteps); volumes convert with the new stroke."""
        if resolution not in RESOLUTIONS:
            raise PumpUsageError(f"pump resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
        self.command(f"{resolution}R", retry=True)
        self.wait_ready(self.valve_timeout_s, "resolution")
        self.resolution = resolution

    def set_speed(self, top: int, start: int | None = None, cutoff: int | None = None) -> None:
        """Top speed 5..6000 pulses/s, optional start 50..1000 and cutoff 50..2700 (each <= top)."""
        _int_in("top speed", top, 5, 6000)
        text = f"V{top}"
        if start is not None:
            text += f"v{_int_in('start speed', start, 50, min(1000, top))}"
        if cutoff is not None:
            text += f"c{_int_in('cutoff speed', cutoff, 50, min(2700, top))}"
        self.command(text + "R", retry=True)
        self.wait_ready(self.valve_timeout_s, "speed")
        self.top_speed = top
