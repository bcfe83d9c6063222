"""Pure functions of the Cavro XCalibur / XLP 6000 serial protocols (DT plain text and OEM framed blocks).

Builders turn an address and a command string into bytes; parsers turn reply bytes into a `Reply` or raise
`ProtocolError` (never any other exception, whatever the bytes). Also: the status byte, addresses, models and the
volume <-> step conversion. No I/O here, so all of it is property-tested on arbitrary bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hal.dispenser.errors import ProtocolError, PumpUsageError, VolumeOutOfRange

STX, ETX, CR, LF = 0x02, 0x03, 0x0D, 0x0A
DT_TERMINATOR = b"\x03\r\n"  # a DT answer ends with ETX CR LF
OEM_TERMINATOR = b"\x03"  # an OEM answer ends with ETX and one checksum byte after it
OEM_EXTRA = 1
HOST_ADDRESS = "0"  # answers are addressed to the host, address 0

# model -> resolution -> steps per full stroke
MODELS: dict[str, dict[str, int]] = {
    "xcalibur": {"N0": 3000, "N1": 24000},
    "xlp6000": {"N0": 6000, "N1": 48000},
}
RESOLUTIONS = ("N0", "N1")
MICROSTEPS = {"N0": 1, "N1": 8}  # position units per speed pulse (speeds are in N0 increments per second)
ADDRESSES = "123456789:;<=>?"  # single-pump addresses: address switch 0..E


@dataclass(frozen=True)
class PumpStatus:
    """The status byte decoded: ready (bit 5) and the error code (low nibble, 0 = none)."""

    ready: bool
    error_code: int

    @property
    def busy(self) -> bool:
        """True while the pump executes a command string."""
        return not self.ready


@dataclass(frozen=True)
class Reply:
    """One parsed answer: its status and its data string (empty for moves and Q)."""

    status: PumpStatus
    data: str


@dataclass(frozen=True)
class OemBlock:
    """One parsed OEM command block (host -> pump)."""

    address: str
    sequence: int
    repeat: bool
    data: str


# -- addresses, models, volumes --------------------------------------------------------------------------------
def validate_address(address: str) -> str:
    """The address if it names one pump (1..9, :..?), else PumpUsageError saying what is allowed."""
    if not isinstance(address, str) or len(address) != 1 or address not in ADDRESSES:
        raise PumpUsageError(
            f"pump address must be one character of 1..9 or :;<=>? (address switch 0..E), got {address!r}"
        )
    return address


def steps_per_stroke(model: str, resolution: str) -> int:
    """Steps of one full stroke for `model` (xcalibur | xlp6000) at `resolution` (N0 | N1)."""
    if model not in MODELS:
        raise PumpUsageError(f"pump model must be one of {', '.join(MODELS)}, got {model!r}")
    if resolution not in RESOLUTIONS:
        raise PumpUsageError(f"pump resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
    return MODELS[model][resolution]


def volume_to_steps(volume_ul: float, syringe_ul: float, stroke_steps: int) -> int:
    """steps = round(volume x stroke / syringe); VolumeOutOfRange unless 0 < steps <= stroke."""
    if not (isinstance(syringe_ul, (int, float)) and math.isfinite(syringe_ul) and syringe_ul > 0):
        raise PumpUsageError(f"syringe volume must be a positive number of uL, got {syringe_ul!r}")
    if not (isinstance(volume_ul, (int, float)) and math.isfinite(volume_ul)):
        raise VolumeOutOfRange(f"volume must be a finite number of uL, got {volume_ul!r}")
    if volume_ul <= 0 or volume_ul > syringe_ul:
        raise VolumeOutOfRange(f"volume {volume_ul} uL does not fit a {syringe_ul} uL syringe (allowed: > 0 and <= {syringe_ul})")
    steps = round(volume_ul * stroke_steps / syringe_ul)
    if steps < 1:
        resolution = syringe_ul / stroke_steps
        raise VolumeOutOfRange(f"volume {volume_ul} uL is below one step ({resolution:.4g} uL) of the syringe")
    return min(steps, stroke_steps)


def steps_to_volume(steps: int, syringe_ul: float, stroke_steps: int) -> float:
    """The volume in uL that `steps` plunger steps displace."""
    return steps * syringe_ul / stroke_steps


# -- status byte -----------------------------------------------------------------------------------------------
def encode_status(ready: bool, error_code: int = 0) -> int:
    """The status byte 0b01X0eeee for ready (X) and an error code 0..15."""
    if not 0 <= error_code <= 15:
        raise PumpUsageError(f"error code must be 0..15, got {error_code}")
    return 0x40 | (0x20 if ready else 0) | error_code


def decode_status(byte: int) -> PumpStatus:
    """PumpStatus from a status byte; ProtocolError unless it has the form 0b01X0eeee."""
    if not isinstance(byte, int) or not 0 <= byte <= 0xFF or (byte & 0xD0) != 0x40:
        raise ProtocolError(f"not a status byte: {byte!r}")
    return PumpStatus(ready=bool(byte & 0x20), error_code=byte & 0x0F)


# -- DT (plain text) -------------------------------------------------------------------------------------------
def _check_command(command: str) -> bytes:
    if not isinstance(command, str) or not command:
        raise PumpUsageError(f"pump command must be a non-empty string, got {command!r}")
    if any(not (0x21 <= ord(ch) <= 0x7E) or ch == "/" for ch in command):
        raise PumpUsageError(f"pump command may hold printable ASCII without spaces or '/', got {command!r}")
    return command.encode("ascii")


def build_dt_command(address: str, command: str) -> bytes:
    """`/` + address + command + CR, e.g. build_dt_command("1", "ZR") == b"/1ZR\\r"."""
    return b"/" + validate_address(address).encode("ascii") + _check_command(command) + b"\r"


def parse_dt_command(raw: bytes) -> tuple[str, str]:
    """(address, command) of a DT command line; ProtocolError if it is not one."""
    if len(raw) < 4 or raw[:1] != b"/" or raw[-1:] != b"\r":
        raise ProtocolError(f"not a DT command: {raw!r}")
    body = raw[2:-1]
    if any(not (0x21 <= b <= 0x7E) or b == 0x2F for b in body):
        raise ProtocolError(f"DT command holds a byte outside printable ASCII: {raw!r}")
    return chr(raw[1]), body.decode("ascii")


def _data_text(data: bytes, raw: bytes) -> str:
    if any(not 0x20 <= b <= 0x7E for b in data):
        raise ProtocolError(f"answer data holds a byte outside printable ASCII: {raw!r}")
    return data.decode("ascii")


def build_dt_reply(status: int, data: str = "") -> bytes:
    """A DT answer: `/0` + status byte + data + ETX CR LF (what the pump sends; for tests and replays)."""
    decode_status(status)
    return b"/0" + bytes([status]) + data.encode("ascii") + DT_TERMINATOR


def parse_dt_reply(raw: bytes) -> Reply:
    """Reply from a DT answer `/0` + status + data + ETX CR LF; ProtocolError for anything else."""
    if not isinstance(raw, (bytes, bytearray)):
        raise ProtocolError(f"answer must be bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    if not raw.endswith(DT_TERMINATOR):
        raise ProtocolError(f"DT answer does not end with ETX CR LF: {raw!r}")
    start = raw.find(b"/0")
    if start < 0 or start + 3 > len(raw) - len(DT_TERMINATOR):
        raise ProtocolError(f"DT answer has no '/0' and status byte: {raw!r}")
    status = decode_status(raw[start + 2])
    return Reply(status, _data_text(raw[start + 3 : -len(DT_TERMINATOR)], raw))


# -- OEM (framed, checksummed) ---------------------------------------------------------------------------------
def checksum(data: bytes) -> int:
    """XOR of every byte (the OEM block checksum covers STX..ETX inclusive)."""
    value = 0
    for b in data:
        value ^= b
    return value


def sequence_byte(n: int, repeat: bool = False) -> int:
    """0x30 | repeat<<3 | n for a sequence number n of 1..7."""
    if not isinstance(n, int) or not 1 <= n <= 7:
        raise PumpUsageError(f"OEM sequence number must be 1..7, got {n!r}")
    return 0x30 | (0x08 if repeat else 0) | n


def next_sequence(n: int) -> int:
    """The sequence number after n: 1..7 cycling."""
    return n % 7 + 1


def build_oem_block(address: str, sequence: int, command: str, repeat: bool = False) -> bytes:
    """STX, address, sequence byte, command, ETX, checksum (XOR of STX..ETX)."""
    body = bytes([STX]) + validate_address(address).encode("ascii") + bytes([sequence_byte(sequence, repeat)])
    body += _check_command(command) + bytes([ETX])
    return body + bytes([checksum(body)])


def _find_block(raw: bytes) -> tuple[bytes, int]:
    """The first STX..ETX block of raw with its checksum byte verified; bytes outside it are ignored."""
    start = raw.find(bytes([STX]))
    if start < 0:
        raise ProtocolError(f"no STX in OEM data: {raw!r}")
    end = raw.find(bytes([ETX]), start + 1)
    if end < 0 or end + 1 >= len(raw):
        raise ProtocolError(f"OEM block without ETX and checksum: {raw!r}")
    block = raw[start : end + 1]
    if checksum(block) != raw[end + 1]:
        raise ProtocolError(f"OEM checksum mismatch (computed {checksum(block):#04x}, got {raw[end + 1]:#04x}): {raw!r}")
    return block, end + 2


def parse_oem_block(raw: bytes) -> OemBlock:
    """OemBlock from a host command block; ProtocolError if malformed or its checksum fails."""
    if not isinstance(raw, (bytes, bytearray)):
        raise ProtocolError(f"block must be bytes, got {type(raw).__name__}")
    block, _ = _find_block(bytes(raw))
    if len(block) < 5:
        raise ProtocolError(f"OEM block too short: {raw!r}")
    seq = block[2]
    if (seq & 0xF0) != 0x30 or not 1 <= (seq & 0x07) <= 7:
        raise ProtocolError(f"OEM sequence byte invalid: {seq:#04x}")
    data = _data_text(block[3:-1], bytes(raw))
    return OemBlock(chr(block[1]), seq & 0x07, bool(seq & 0x08), data)


def build_oem_reply(status: int, data: str = "") -> bytes:
    """An OEM answer: STX `0` status data ETX checksum (what the pump sends; for tests and replays)."""
    decode_status(status)
    body = bytes([STX]) + b"0" + bytes([status]) + data.encode("ascii") + bytes([ETX])
    return body + bytes([checksum(body)])


def parse_oem_reply(raw: bytes) -> Reply:
    """Reply from an OEM answer STX `0` status data ETX checksum; bytes outside the block are ignored."""
    if not isinstance(raw, (bytes, bytearray)):
        raise ProtocolError(f"answer must be bytes, got {type(raw).__name__}")
    block, _ = _find_block(bytes(raw))
    if len(block) < 4 or block[1:2] != HOST_ADDRESS.encode("ascii"):
        raise ProtocolError(f"OEM answer not addressed to the host or too short: {raw!r}")
    status = decode_status(block[2])
    return Reply(status, _data_text(block[3:-1], bytes(raw)))
