"""Wire-level emulator of a Tecan Cavro XCalibur / XLP 6000 syringe pump on a pseudo-terminal (DT and OEM).

Written from the pump manual, not from the driver. Strict like the device: case-sensitive commands, chained command
strings executed on `R`, reports at once, error codes in the status byte, command overflow while busy. Moves take
time on the world's clock (state is computed from clock.now(), nothing blocks the reader thread); liquid pushed out
through the output port goes to `world.dispense`, so the world knows what left the tip into which vial.

Behaviour choices where the manual leaves room (see docs/devices/pump.md): an error found when a command string is
received is reported in the answer to that string; a non-sticky error is reported once (in the next answer) and then
cleared; errors 1 and 9 stay until a good initialisation; error 15 (overflow) is reported to the overflowing command
only and the running move continues; T discards the rest of the string (R does not resume it); initialisation expels
the syringe contents through the output port (so initialise over waste).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sim.serial_port import PtySerialPort
from sim.world import World

STX, ETX = 0x02, 0x03
STROKE_N0 = {"xcalibur": 3000, "xlp6000": 6000}  # steps per stroke at N0; N1 is 8x
MICROSTEPS = {"N0": 1, "N1": 8}
FIRMWARE = {"xcalibur": "XCalibur SIM 1.00", "xlp6000": "XLP6000 SIM 1.00"}
ADDRESSES = "123456789:;<=>?"
VALVE_MOVE_S = 0.25  # simulated seconds per valve move
INIT_BASE_S = 1.0  # simulated seconds of an initialisation, plus the plunger's travel home
INIT_SPEED = 1400  # pulses/s of the plunger during initialisation
STICKY = (1, 9)
REPORTS = {"Q", "?", "&", "F"}
# (min args, max args, ranges per arg); None range = checked at execution
ARG_SPECS: dict[str, tuple[int, int, tuple[tuple[int, int] | None, ...]]] = {
    "Z": (0, 3, ((0, 2), (0, 12), (0, 12))),
    "Y": (0, 3, ((0, 2), (0, 12), (0, 12))),
    "N": (1, 1, ((0, 1),)),
    "A": (1, 1, (None,)),
    "P": (1, 1, (None,)),
    "D": (1, 1, (None,)),
    "I": (0, 1, (None,)),
    "O": (0, 1, (None,)),
    "B": (0, 0, ()),
    "V": (1, 1, ((5, 6000),)),
    "v": (1, 1, ((50, 1000),)),
    "c": (1, 1, ((50, 2700),)),
    "L": (1, 1, ((1, 20),)),
    "S": (1, 1, ((0, 40),)),
    "K": (1, 1, ((0, 31),)),
    "M": (1, 1, ((0, 30000),)),
    "g": (0, 0, ()),
    "G": (0, 1, ((0, 30000),)),
    "R": (0, 0, ()),
    "T": (0, 0, ()),
    "Q": (0, 0, ()),
    "F": (0, 0, ()),
    "&": (0, 0, ()),
}
REPORT_NUMBERS = {1, 2, 3, 4, 6, 10, 12, 15, 16, 17, 23}


def _speed_for_code(n: int) -> int:
    """Top speed of preset S<n> (approximation of the maker's table: S0 fastest, S11 = 1400 default, S40 slowest)."""
    table = [6000, 5600, 5000, 4400, 3800, 3200, 2600, 2200, 2000, 1800, 1600, 1400, 1200, 1000, 800, 600]
    return table[n] if n < len(table) else max(5, 600 - (n - 15) * 24)


class _Refused(Exception):
    """A command string the pump refuses: carries the error code for the status byte."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Action:
    """Something the pump is doing from `start` to `end` (simulated seconds)."""

    kind: str  # plunger | valve | init | delay
    start: float
    end: float
    p0: int = 0
    p1: int = 0
    valve: str = ""


def _checksum(data: bytes) -> int:
    value = 0
    for b in data:
        value ^= b
    return value


def tokenize(text: str, valve_ports: int = 0) -> list[tuple[str, list[int]]]:
    """Split a command string into (command, integer args); _Refused(2) for syntax, _Refused(3) for operands."""
    tokens: list[tuple[str, list[int]]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "?":
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            number = int(text[i:j]) if j > i else 0
            if j > i and number not in REPORT_NUMBERS:
                raise _Refused(2)
            tokens.append(("?", [number]))
            i = j
            continue
        if ch not in ARG_SPECS:
            raise _Refused(2)
        j = i
        while j < len(text) and (text[j].isdigit() or text[j] in ",.-+"):
            j += 1
        raw = text[i:j]
        i = j
        parts = raw.split(",") if raw else []
        low, high, ranges = ARG_SPECS[ch]
        if not low <= len(parts) <= high or any(not p.isdigit() for p in parts):
            raise _Refused(3)  # missing, extra, negative or non-integer operand
        args = [int(p) for p in parts]
        for value, bounds in zip(args, ranges):
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                raise _Refused(3)
        if ch in "IO" and args and not 1 <= args[0] <= valve_ports:
            raise _Refused(3)  # a port number on a valve without that port
        tokens.append((ch, args))
    return tokens


class PumpEmulator:
    """One emulated pump at `address`, serving a pty from start() until stop(); the LineDevice of its port."""

    def __init__(
        self,
        world: World,
        *,
        address: str = "1",
        syringe_ul: float = 1000.0,
        model: str = "xcalibur",
        baudrate: int = 9600,
        valve_ports: int = 0,
    ) -> None:
        if address not in ADDRESSES or len(address) != 1:
            raise ValueError(f"pump address must be one of 1..9, :..?, got {address!r}")
        if model not in STROKE_N0:
            raise ValueError(f"pump model must be one of {', '.join(STROKE_N0)}, got {model!r}")
        self.world = world
        self.clock = world.clock
        self.address = address
        self.syringe_ul = float(syringe_ul)
        self.model = model
        self.baudrate = baudrate
        self.valve_ports = valve_ports
        self.firmware = FIRMWARE[model]
        self.path: str | None = None
        self.port: PtySerialPort | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        # line state
        self.mode: str | None = None  # dt | oem, fixed by the first message
        self._rx = bytearray()
        self._last_seq: int | None = None
        self._last_reply = b""
        # pump state
        self.initialised = False
        self.resolution = "N0"
        self.position = 0  # in steps of the current resolution
        self.valve = "i"  # i | o | b | port number as text
        self.top_speed, self.start_speed, self.cutoff_speed, self.slope, self.backlash = 1400, 900, 900, 14, 12
        self.error = 0
        self.counters = {"init": 0, "plunger": 0, "valve": 0}
        self._buffer: list[tuple[str, list[int]]] = []
        self._program: list[tuple[str, list[int]]] = []
        self._pc = 0
        self._loops: list[list[int]] = []  # [start pc, remaining repeats (-1 = forever)]
        self._action: _Action | None = None
        self._cursor = 0.0  # simulated time at which the next token of the program runs
        # liquid bookkeeping (uL)
        self.reservoir_drawn_ul = 0.0
        self.reservoir_returned_ul = 0.0
        self.tip_drawn_ul = 0.0

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> str:
        """Open the pty and start serving; returns the path a driver opens."""
        self.port = PtySerialPort(
            self,
            self.clock,
            baudrate=self.baudrate,
            name="pump",
            is_silent=lambda: self.world.faults.active("pump.silent"),
        )
        self.path = self.port.path
        self._stop.clear()
        self._ticker = threading.Thread(target=self._tick, name="sim-pump-ticker", daemon=True)
        self._ticker.start()
        return self.path

    def stop(self) -> None:
        """Stop serving and close the pty."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self.port is not None:
            self.port.close()

    def _tick(self) -> None:
        """Complete moves on time (liquid reaches the world when it leaves the tip) and pull the line on fault."""
        while not self._stop.wait(0.002):
            with self._lock:
                self._advance(self.clock.now())
            if self.world.faults.active("pump.line_gone") and self.port is not None and not self.port.closed:
                self.port.close()

    # -- geometry -----------------------------------------------------------------------------------------------
    @property
    def stroke(self) -> int:
        """Steps per full stroke at the current resolution."""
        return STROKE_N0[self.model] * MICROSTEPS[self.resolution]

    @property
    def ul_per_step(self) -> float:
        """Volume of one plunger step at the current resolution."""
        return self.syringe_ul / self.stroke

    @property
    def contents_ul(self) -> float:
        """Liquid in the syringe (the plunger position's volume)."""
        with self._lock:
            self._advance(self.clock.now())
            return self.position * self.ul_per_step

    def busy(self) -> bool:
        """True while a command string is executing."""
        with self._lock:
            self._advance(self.clock.now())
            return self._busy()

    def _busy(self) -> bool:
        return self._action is not None or self._pc < len(self._program)

    # -- the line -----------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[bytes]:
        """Bytes from the host in, answers out (LineDevice)."""
        if self.world.faults.active("pump.line_gone"):
            return []
        with self._lock:
            self._rx += data
            if self.mode is None:
                for i, b in enumerate(self._rx):
                    if b in (ord("/"), STX):
                        self.mode = "dt" if b == ord("/") else "oem"
                        del self._rx[:i]
                        break
                else:
                    self._rx.clear()
                    return []
            replies = self._feed_dt() if self.mode == "dt" else self._feed_oem()
            if len(self._rx) > 1024:
                self._rx.clear()
            return replies

    def _feed_dt(self) -> list[bytes]:
        replies = []
        while (end := self._rx.find(b"\r")) >= 0:
            line = bytes(self._rx[:end])
            del self._rx[: end + 1]
            start = line.find(b"/")
            if start < 0 or start + 1 >= len(line) or chr(line[start + 1]) != self.address:
                continue  # not for this pump (or noise): no answer
            try:
                text = line[start + 2 :].decode("ascii")
            except UnicodeDecodeError:
                text = "\x00"  # an invalid command
            status, data = self._handle(text)
            reply = b"/0" + bytes([status]) + data.encode("ascii") + b"\x03\r\n"
            if self.world.faults.take("pump.garbled"):
                reply = reply[:2] + bytes([reply[2] | 0x80]) + reply[3:]  # impossible status byte
            replies.append(reply)
        return replies

    def _feed_oem(self) -> list[bytes]:
        replies = []
        while True:
            start = self._rx.find(bytes([STX]))
            if start < 0:
                self._rx.clear()
                return replies
            del self._rx[:start]
            end = self._rx.find(bytes([ETX]))
            if end < 0 or end + 1 >= len(self._rx):
                return replies  # incomplete block: wait for more bytes
            block, check = bytes(self._rx[: end + 1]), self._rx[end + 1]
            del self._rx[: end + 2]
            if _checksum(block) != check or len(block) < 4 or chr(block[1]) != self.address:
                continue  # a damaged block or one for another pump: no answer (the host resends)
            seq = block[2]
            if seq & 0xF0 != 0x30 or not 1 <= seq & 0x07 <= 7:
                continue
            n, repeat = seq & 0x07, bool(seq & 0x08)
            if repeat and n == self._last_seq and self._last_reply:
                self.world.faults.notify_command("pump")
                reply = self._last_reply  # already executed: answer again, do not execute twice
            else:
                try:
                    text = block[3:-1].decode("ascii")
                except UnicodeDecodeError:
                    text = "\x00"
                status, data = self._handle(text)
                body = bytes([STX]) + b"0" + bytes([status]) + data.encode("ascii") + bytes([ETX])
                reply = body + bytes([_checksum(body)])
                self._last_seq, self._last_reply = n, reply
            if self.world.faults.take("pump.garbled"):
                reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])  # bad checksum
            replies.append(reply)

    # -- commands -----------------------------------------------------------------------------------------------
    def _status(self, override: int | None = None) -> int:
        """The status byte now; a non-sticky error goes out once and is then cleared."""
        code = self.error if override is None else override
        status = 0x40 | (0 if self._busy() else 0x20) | code
        if override is None and self.error and self.error not in STICKY:
            self.error = 0
        return status

    def _handle(self, text: str) -> tuple[int, str]:
        """Execute or load one command string; returns (status byte, data)."""
        now = self.clock.now()
        self._advance(now)
        self.world.faults.notify_command("pump")
        try:
            tokens = tokenize(text, self.valve_ports)
            if not tokens:
                raise _Refused(2)
        except _Refused as exc:
            if self.error not in STICKY:
                self.error = exc.code
            return self._status(), ""
        names = [t[0] for t in tokens]
        if names[0] in REPORTS or names[0] == "?":
            if len(tokens) > 1:
                self._set_error(2)
                return self._status(), ""
            return self._report(*tokens[0])
        if names == ["T"]:
            self._terminate(now)
            return self._status(), ""
        if "T" in names or any(n in REPORTS or n == "?" for n in names):
            self._set_error(2)
            return self._status(), ""
        if "R" in names[:-1]:
            self._set_error(4)
            return self._status(), ""
        if self._busy():
            return self._status(override=15), ""  # refused; the running string carries on
        if names[-1] != "R":
            self._buffer = tokens
            return self._status(), ""
        program = tokens[:-1] or self._buffer
        self._buffer = []
        if not self._loops_balanced(program):
            self._set_error(4)
            return self._status(), ""
        if self.error not in STICKY:
            self.error = 0
        self._program, self._pc, self._loops, self._cursor = program, 0, [], now
        self._advance(now)
        return self._status(), ""

    @staticmethod
    def _loops_balanced(program: list[tuple[str, list[int]]]) -> bool:
        depth = 0
        for name, _ in program:
            depth += name == "g"
            depth -= name == "G"
            if depth < 0 or depth > 10:
                return False
        return depth == 0

    def _set_error(self, code: int) -> None:
        """An error stops the pump and clears its command buffer (sticky errors are kept)."""
        if self.error not in STICKY:
            self.error = code
        self._program, self._pc, self._loops, self._buffer = [], 0, [], []

    def _report(self, name: str, args: list[int]) -> tuple[int, str]:
        if name == "Q":
            return self._status(), ""
        if name == "&":
            return self._status(), self.firmware
        if name == "F":
            return self._status(), "1" if self._buffer else "0"
        number = args[0]
        data = {
            0: str(self.position),
            1: str(self.start_speed),
            2: str(self.top_speed),
            3: str(self.cutoff_speed),
            4: str(self.position),
            6: self.valve,
            10: "1" if self._buffer else "0",
            12: str(self.backlash),
            15: str(self.counters["init"]),
            16: str(self.counters["plunger"]),
            17: str(self.counters["valve"]),
            23: self.firmware,
        }[number]
        return self._status(), data

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
        if self.error in STICKY:
            self._set_error(self.error)
            return False
        if not self.initialised:
            self._set_error(7)
            return False
        return True

    def _execute(self, name: str, args: list[int], t: float) -> None:
        if name in "ZY":
            if self.world.faults.take("pump.plunger_overload"):
                self.error = 0
                self._set_error(1)  # the plunger stalled on its way home: initialisation failed
                self.initialised = False
                return
            self.error = 0
            duration = INIT_BASE_S + self.position / MICROSTEPS[self.resolution] / INIT_SPEED
            self._action = _Action("init", t, t + duration, self.position, 0, "o")
        elif name == "N":
            new = "N1" if args[0] else "N0"
            if new != self.resolution:
                self.position = self.position * 8 if new == "N1" else self.position // 8
                self.resolution = new
        elif name in "APD":
            if not self._move_allowed():
                return
            n = args[0]
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
        elif name in "IOB":
            if not self._move_allowed():
                return
            if self.world.faults.take("pump.valve_overload"):
                self._set_error(10)
                return
            target = str(args[0]) if args else {"I": "i", "O": "o", "B": "b"}[name]
            self.counters["valve"] += 1
            self._action = _Action("valve", t, t + (VALVE_MOVE_S if target != self.valve else 0.05), valve=target)
        elif name == "V":
            self.top_speed = args[0]
        elif name == "v":
            self.start_speed = args[0]
        elif name == "c":
            self.cutoff_speed = args[0]
        elif name == "L":
            self.slope = args[0]
        elif name == "S":
            self.top_speed = _speed_for_code(args[0])
        elif name == "K":
            self.backlash = args[0]
        elif name == "M":
            self._action = _Action("delay", t, t + args[0] / 1000.0)
        elif name == "g":
            self._loops.append([self._pc, -2])  # -2: repeats not yet known
        elif name == "G":
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
