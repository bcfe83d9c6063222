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

from sim.pump_commands import (ADDRESSES, ETX, FIRMWARE, MICROSTEPS, REPORTS, STICKY, STROKE_N0, STX, _Action,
                               _checksum, _Refused, tokenize)
from sim.pump_motion import PumpMotion
from sim.serial_port import PtySerialPort
from sim.world import World

__all__ = ["PumpEmulator", "tokenize"]


class PumpEmulator(PumpMotion):
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
