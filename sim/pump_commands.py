"""The Cavro pump emulator's command language: constants of the device, the argument table and the tokenizer of a
command string (written from the pump manual; sim/dispenser.py serves it on a pty, sim/pump_motion.py runs it)."""

from __future__ import annotations

from dataclasses import dataclass

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
    """The OEM block check: XOR of every byte of the block."""
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
