"""The Cavro pump emulator's execution on the simulated timeline: a loaded program runs token by token, each move an
action with a start and an end in simulated seconds; liquid reaches the world when a plunger move ends."""

from __future__ import annotations

from typing import Any

from sim.pump_commands import INIT_BASE_S, INIT_SPEED, MICROSTEPS, STICKY, VALVE_MOVE_S, _Action, _speed_for_code


SETTINGS = frozenset("VvcLSK")  # tokens that set a speed, the slope or the backlash (no motion)


class PumpMotion:
    """Mixin of PumpEmulator: program execution, errors, terminate and the end of each action (state in __init__)."""

    world: Any
    error: int
    initialised: bool
    resolution: str
    position: int
    valve: str
    top_speed: int
    start_speed: int
    cutoff_speed: int
    slope: int
    backlash: int
    counters: dict[str, int]
    reservoir_drawn_ul: float
    reservoir_returned_ul: float
    tip_drawn_ul: float
    _buffer: list[tuple[str, list[int]]]
    _program: list[tuple[str, list[int]]]
    _pc: int
    _loops: list[list[int]]
    _action: _Action | None
    _cursor: float

    @property
    def stroke(self) -> int:  # pragma: no cover - PumpEmulator's
        """Steps per full stroke (PumpEmulator.stroke)."""
        raise NotImplementedError

    @property
    def ul_per_step(self) -> float:  # pragma: no cover - PumpEmulator's
        """Volume of one plunger step (PumpEmulator.ul_per_step)."""
        raise NotImplementedError

    def _set_error(self, code: int) -> None:
        """An error stops the pump and clears its command buffer (sticky errors are kept)."""
        if self.error not in STICKY:
            self.error = code
        self._program, self._pc, self._loops, self._buffer = [], 0, [], []

    def _terminate(self, now: float) -> None:
        """T: stop a plunger move or delay at once (a valve move finishes); the rest of the string is dropped."""
        action = self._action
        self._program, self._pc, self._loops = [], 0, []
        if action is None or action.kind == "valve":
            return
        if action.kind == "plunger":
            span = action.end - action.start
            fraction = 1.0 if span <= 0 else min(1.0, max(0.0, (now - action.start) / span))
            action.p1 = action.p0 + round((action.p1 - action.p0) * fraction)
            self._finish(action)
        self._action = None

    # -- execution on the simulated timeline ---------------------------------------------------------------------
    def _advance(self, now: float) -> None:
        """Run the program up to `now`: finish actions whose time has come, start the next tokens."""
        steps = 0
        while True:
            if self._action is not None:
                if now < self._action.end:
                    return
                self._finish(self._action)
                self._cursor = self._action.end
                self._action = None
            if self._pc >= len(self._program):
                self._program, self._pc = [], 0
                return
            name, args = self._program[self._pc]
            self._pc += 1
            self._execute(name, args, self._cursor)
            if self._action is not None and self._action.end > now:
                self._announce(self._action.end)
            steps += 1
            if steps > 10000 and self._action is None:
                self._set_error(4)  # a loop that never takes time
                return

    def _announce(self, at: float) -> None:
        """Tell a shared timeline when the running action ends (a driver's status pause ends there)."""
        wake = getattr(self.world.clock, "wake", None)
        if wake is not None:
            wake(at)

    def _move_allowed(self) -> bool:
        """A move may start: no sticky error (it is reported again) and initialised (else error 7)."""
        if self.error in STICKY:
            self._set_error(self.error)
            return False
        if not self.initialised:
            self._set_error(7)
            return False
        return True

    def _execute(self, name: str, args: list[int], t: float) -> None:
        """Run one token of the program at simulated time `t` (a move becomes the running action)."""
        if name in "ZY":
            self._execute_init(t)
        elif name == "N":
            new = "N1" if args[0] else "N0"
            if new != self.resolution:
                self.position = self.position * 8 if new == "N1" else self.position // 8
                self.resolution = new
        elif name in "APD":
            self._execute_plunger(name, args[0], t)
        elif name in "IOB":
            self._execute_valve(name, args, t)
        elif name in SETTINGS:
            self._execute_setting(name, args[0])
        elif name == "M":
            self._action = _Action("delay", t, t + args[0] / 1000.0)
        elif name in "gG":
            self._execute_loop(name, args)

    def _execute_init(self, t: float) -> None:
        """Z / Y: the plunger homes (its travel takes time), the valve goes to the output; a stall fails it."""
        if self.world.faults.take("pump.plunger_overload"):
            self.error = 0
            self._set_error(1)  # the plunger stalled on its way home: initialisation failed
            self.initialised = False
            return
        self.error = 0
        duration = INIT_BASE_S + self.position / MICROSTEPS[self.resolution] / INIT_SPEED
        self._action = _Action("init", t, t + duration, self.position, 0, "o")

    def _execute_plunger(self, name: str, n: int, t: float) -> None:
        """A (absolute), P (pick up), D (dispense): a plunger move at the top speed, or the error that stops it."""
        if not self._move_allowed():
            return
        target = n if name == "A" else self.position + n if name == "P" else self.position - n
        if self.valve == "b":
            self._set_error(11)
        elif not 0 <= target <= self.stroke:
            self._set_error(3)
        elif self.world.faults.take("pump.plunger_overload"):
            self.error = 0
            self._set_error(9)
            self.initialised = False
        else:
            duration = abs(target - self.position) / MICROSTEPS[self.resolution] / self.top_speed
            self.counters["plunger"] += 1
            self._action = _Action("plunger", t, t + duration, self.position, target, self.valve)

    def _execute_valve(self, name: str, args: list[int], t: float) -> None:
        """I / O / B (or I<n>, O<n> on a distribution valve): a valve move, or the overload error."""
        if not self._move_allowed():
            return
        if self.world.faults.take("pump.valve_overload"):
            self._set_error(10)
            return
        target = str(args[0]) if args else {"I": "i", "O": "o", "B": "b"}[name]
        self.counters["valve"] += 1
        self._action = _Action("valve", t, t + (VALVE_MOVE_S if target != self.valve else 0.05), valve=target)

    def _execute_setting(self, name: str, value: int) -> None:
        """V v c L S K: speeds, slope and backlash, set at once."""
        if name == "V":
            self.top_speed = value
        elif name == "v":
            self.start_speed = value
        elif name == "c":
            self.cutoff_speed = value
        elif name == "L":
            self.slope = value
        elif name == "S":
            self.top_speed = _speed_for_code(value)
        else:
            self.backlash = value

    def _execute_loop(self, name: str, args: list[int]) -> None:
        """g marks a loop start; G<n> repeats back to it n more times (G or G0: for ever, until T)."""
        if name == "g":
            self._loops.append([self._pc, -2])  # -2: repeats not yet known
            return
        loop = self._loops[-1]
        if loop[1] == -2:
            loop[1] = -1 if not args or args[0] == 0 else args[0] - 1
        if loop[1] == -1:
            self._pc = loop[0]
        elif loop[1] > 0:
            loop[1] -= 1
            self._pc = loop[0]
        else:
            self._loops.pop()

    def _finish(self, action: _Action) -> None:
        """An action ends: the plunger or valve is where it went, liquid is where it was pushed."""
        if action.kind == "valve":
            self.valve = action.valve
        elif action.kind == "init":
            expelled = self.position * self.ul_per_step
            if expelled > 0:
                self.world.dispense(expelled)  # homing the plunger pushes the contents out of the output port
            self.position, self.valve, self.initialised = 0, "i", True
            self.counters["init"] += 1
        elif action.kind == "plunger":
            moved = action.p1 - action.p0
            volume = abs(moved) * self.ul_per_step
            self.position = action.p1
            to_tip = action.valve == "o" or (action.valve.isdigit() and action.valve != "1")
            if moved < 0 and volume > 0:
                if to_tip:
                    self.world.dispense(volume)
                else:
                    self.reservoir_returned_ul += volume
            elif moved > 0:
                if to_tip:
                    self.tip_drawn_ul += volume
                else:
                    self.reservoir_drawn_ul += volume
