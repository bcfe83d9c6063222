"""Wire-level emulator of a Mettler Toledo balance speaking MT-SICS (@, I4, S, SI, Z, T, TA, TAC) on a pty.

Written from the MT-SICS facts in the device brief, independent of hal/. The pan carries whatever the world puts
under the fill position (`world.balance_gross_g()`); the emulator keeps the balance's own zero point and tare memory.
Commands that need a stable load (S, Z, T) wait for it on the world's clock, sampling the load at the weighing
cell's update rate, for at most `stable_timeout_s`, then answer `I` (not executable). The wait blocks only this
emulator's serial thread, never the world or the other devices.
"""

from __future__ import annotations

import math
import re
import threading

from sim.serial_port import PtySerialPort
from sim.world import World

TERMINATOR = b"\r\n"
FIELD_WIDTH = 10  # the weight value is right-aligned in a field this wide
MAX_LINE = 256  # bytes without CR LF after which the emulator gives up on the line (ET)
# host unit -> (factor from grams, decimals shown) for a 0.1 mg analytical balance
UNITS: dict[str, tuple[float, int]] = {"g": (1.0, 4), "mg": (1000.0, 1), "kg": (0.001, 7)}
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def format_weight_line(reply_id: str, status: str, value: float, unit: str, decimals: int) -> bytes:
    """One weight answer: `<id> <status> <value right-aligned in 10> <unit>` + CR LF, e.g. `S S     0.2514 g`."""
    shown = round(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{reply_id} {status} {shown:>{FIELD_WIDTH}.{decimals}f} {unit}".encode("ascii") + TERMINATOR


def format_line(text: str) -> bytes:
    """Any other answer line (`Z A`, `ES`, `I4 A "..."`) with its CR LF."""
    return text.encode("ascii") + TERMINATOR


class BalanceEmulator:
    """An MT-SICS balance on the world's fill position: `feed(bytes)` in, answer lines out; `start()` serves a pty."""

    def __init__(
        self,
        world: World,
        *,
        serial_number: str = "B123456789",
        baudrate: int = 9600,
        unit: str = "g",
        stable_timeout_s: float = 3.0,
        update_s: float = 0.05,
        underload_margin_g: float = 0.1,
        zero_range_g: float | None = None,
        answer_delay_s: float = 0.005,
    ) -> None:
        """`stable_timeout_s`: how long S / Z / T wait for stability (simulated s); `zero_range_g`: how far from the
        power-on zero Z may set a new zero (default 2 % of capacity); `underload_margin_g`: how far below the zero
        point the load may fall before the balance reports underload."""
        if unit not in UNITS:
            raise ValueError(f"balance unit {unit!r} not supported; allowed: {', '.join(UNITS)}")
        if not serial_number.isprintable() or '"' in serial_number or not serial_number.isascii():
            raise ValueError(f"balance serial number {serial_number!r}: printable ASCII without quotes")
        self.world = world
        self.serial_number = serial_number
        self.baudrate = baudrate
        self.unit = unit
        self.stable_timeout_s = stable_timeout_s
        self.update_s = update_s
        self.underload_margin_g = underload_margin_g
        self.zero_range_g = 0.02 * world.s.balance_capacity_g if zero_range_g is None else zero_range_g
        self.answer_delay_s = answer_delay_s
        self.zero_g = 0.0  # zero point, gross grams
        self.tare_g = 0.0  # tare memory, grams above the zero point
        self.commands: list[str] = []  # every command line received, for tests
        self._buf = bytearray()
        self._lock = threading.RLock()
        self._port: PtySerialPort | None = None

    # -- the serial line -------------------------------------------------------------------------------------------
    def start(self) -> str:
        """Serve on a new pty; returns the path a driver opens."""
        if self._port is None or self._port.closed:
            self._port = PtySerialPort(
                self, self.world.clock, baudrate=self.baudrate, answer_delay_s=self.answer_delay_s, name="balance"
            )
        return self._port.path

    def stop(self) -> None:
        """Close the pty (the line is gone for the driver)."""
        if self._port is not None:
            self._port.close()

    @property
    def path(self) -> str | None:
        """The pty path while serving, else None."""
        return self._port.path if self._port is not None and not self._port.closed else None

    def feed(self, data: bytes) -> list[bytes]:
        """Bytes from the host: one answer per complete CR LF line; a runaway line without CR LF answers ET."""
        replies: list[bytes] = []
        with self._lock:
            self._buf += data
            while True:
                end = self._buf.find(TERMINATOR)
                if end < 0:
                    if len(self._buf) > MAX_LINE:
                        self._buf.clear()
                        replies.append(format_line("ET"))
                    break
                line = bytes(self._buf[:end])
                del self._buf[: end + len(TERMINATOR)]
                replies.append(self.handle(line))
        return replies

    # -- the balance -----------------------------------------------------------------------------------------------
    def handle(self, line: bytes) -> bytes:
        """Execute one command line (without CR LF) and return its answer line."""
        self.world.faults.notify_command("balance")
        if len(line) > MAX_LINE or any(b < 0x20 or b > 0x7E for b in line):
            return format_line("ET")
        text = line.decode("ascii")
        self.commands.append(text)
        name, *params = text.split(" ") if text else [""]
        with self._lock:
            if name == "TA" and params:
                return self._preset_tare(params)
            if params:
                return format_line("ES")
            handler = {
                "@": self._reset,
                "I4": self._identify,
                "S": self._send_stable,
                "SI": self._send_now,
                "Z": self._zero,
                "T": self._tare,
                "TA": self._tare_value,
                "TAC": self._clear_tare,
            }.get(name)
            return handler() if handler is not None else format_line("ES")

    def _weight(self, reply_id: str, status: str, grams: float) -> bytes:
        factor, decimals = UNITS[self.unit]
        return format_weight_line(reply_id, status, grams * factor, self.unit, decimals)

    def _range(self, gross: float) -> str | None:
        """'+' over capacity (or the overload fault), '-' below the zero point by more than the margin."""
        if self.world.faults.active("balance.overload") or gross > self.world.s.balance_capacity_g:
            return "+"
        if gross - self.zero_g < -self.underload_margin_g:
            return "-"
        return None

    def _wait_stable(self) -> tuple[float, bool]:
        """Sample the load at the cell's update rate until stable or `stable_timeout_s` have passed (sim clock)."""
        clock = self.world.clock
        give_up = clock.now() + self.stable_timeout_s
        while True:
            gross, stable = self.world.balance_gross_g()
            left = give_up - clock.now()
            if stable or left <= 0 or self._range(gross) is not None:
                return gross, stable
            clock.sleep(min(self.update_s, left))

    def _reset(self) -> bytes:
        self.tare_g = 0.0
        return self._identify()

    def _identify(self) -> bytes:
        return format_line(f'I4 A "{self.serial_number}"')

    def _send_stable(self) -> bytes:
        gross, stable = self._wait_stable()
        status = self._range(gross)
        if status:
            return format_line(f"S {status}")
        if not stable:
            return format_line("S I")
        return self._weight("S", "S", gross - self.zero_g - self.tare_g)

    def _send_now(self) -> bytes:
        gross, stable = self.world.balance_gross_g()
        status = self._range(gross)
        if status:
            return format_line(f"S {status}")
        return self._weight("S", "S" if stable else "D", gross - self.zero_g - self.tare_g)

    def _zero(self) -> bytes:
        gross, stable = self._wait_stable()
        if self._range(gross) == "+" or gross > self.zero_range_g:
            return format_line("Z +")
        if gross < -self.zero_range_g:
            return format_line("Z -")
        if not stable:
            return format_line("Z I")
        self.zero_g, self.tare_g = gross, 0.0
        return format_line("Z A")

    def _tare(self) -> bytes:
        gross, stable = self._wait_stable()
        status = self._range(gross)
        if status:
            return format_line(f"T {status}")
        if not stable:
            return format_line("T I")
        self.tare_g = gross - self.zero_g
        return self._weight("T", "S", self.tare_g)

    def _tare_value(self) -> bytes:
        return self._weight("TA", "A", self.tare_g)

    def _preset_tare(self, params: list[str]) -> bytes:
        if len(params) != 2:
            return format_line("ES")
        value, unit = params
        if unit != self.unit or not _NUMBER.fullmatch(value):
            return format_line("TA L")
        grams = float(value) / UNITS[self.unit][0]
        if not (math.isfinite(grams) and 0.0 <= grams <= self.world.s.balance_capacity_g):
            return format_line("TA L")
        self.tare_g = grams
        return self._weight("TA", "A", self.tare_g)

    def _clear_tare(self) -> bytes:
        self.tare_g = 0.0
        return format_line("TAC A")
