"""MT-SICS as pure functions: build a command line, parse a reply line into a typed result or a typed error.

A reply is `<id> <status>[ <data>]` + CR LF, or one of the general errors `ES`, `ET`, `EL`. Weight data is a number
right-aligned in a fixed-width field followed by a space and the unit. Anything else raises BalanceProtocolError:
no other exception ever leaves these functions, whatever bytes they are given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from hal.balance.errors import (
    BalanceBusy,
    BalanceCommandError,
    BalanceError,
    BalanceLogicalError,
    BalanceOverload,
    BalanceProtocolError,
    BalanceSyntaxError,
    BalanceTransmissionError,
    BalanceUnderload,
)

TERMINATOR = b"\r\n"
MAX_LINE = 256  # longer than any answer to the commands we use; longer lines are garbage

# command sent -> identifier of its answer line
REPLY_ID: dict[str, str] = {"@": "I4", "I4": "I4", "S": "S", "SI": "S", "Z": "Z", "T": "T", "TA": "TA", "TAC": "TAC"}
# answer identifier -> statuses that carry a weight (S stable, D dynamic, A done)
WEIGHT_STATUS: dict[str, frozenset[str]] = {"S": frozenset("SD"), "T": frozenset("S"), "TA": frozenset("A")}

_GENERAL_ERRORS: dict[str, type[BalanceError]] = {
    "ES": BalanceSyntaxError,
    "ET": BalanceTransmissionError,
    "EL": BalanceLogicalError,
}
_STATUS_ERRORS: dict[str, tuple[type[BalanceError], str]] = {
    "I": (BalanceBusy, "command not executable now (busy, or not stable within the balance's time limit)"),
    "+": (BalanceOverload, "overload: load above the range"),
    "-": (BalanceUnderload, "underload: load below the range"),
    "L": (BalanceLogicalError, "logical error: parameter not allowed or command not executable"),
}
_LINE = re.compile(r"(?P<id>@|[A-Z][A-Z0-9]{0,7}) (?P<status>[A-Z+\-])(?: +(?P<data>.*?))? *")
_WEIGHT = re.compile(r" *(?P<value>[+-]?[0-9]{1,12}(?:\.[0-9]{1,12})?) +(?P<unit>[A-Za-z%][A-Za-z0-9/%]{0,5}) *")
_TEXT = re.compile(r'"(?P<text>[^"]*)"')
_COMMAND = re.compile(r"[\x20-\x7e]{1,%d}" % (MAX_LINE - 2))


@dataclass(frozen=True)
class Reading:
    """A weight from the balance: value in `unit`, and whether the balance called it stable."""

    value: float
    unit: str
    stable: bool


@dataclass(frozen=True)
class Reply:
    """One parsed answer line that is not an error: identifier, status, and its weight or quoted text if any."""

    id: str
    status: str
    reading: Reading | None = None
    text: str | None = None
    data: str | None = None


def build_command(command: str) -> bytes:
    """Encode one MT-SICS command line (`command` + CR LF); BalanceCommandError for non-ASCII or control bytes."""
    if not isinstance(command, str) or not _COMMAND.fullmatch(command):
        raise BalanceCommandError(
            f"invalid balance command {command!r}: 1..{MAX_LINE - 2} printable ASCII characters, no CR / LF",
            command=str(command),
        )
    if command != command.strip():
        raise BalanceCommandError(f"invalid balance command {command!r}: no leading/trailing spaces", command=command)
    return command.encode("ascii") + TERMINATOR


def tare_preset_command(value: float, unit: str = "g", decimals: int = 4) -> str:
    """The `TA <value> <unit>` command that presets a tare value."""
    if not math.isfinite(value):
        raise BalanceCommandError(f"tare preset must be a finite number, got {value!r}", command="TA")
    return f"TA {value:.{decimals}f} {unit}"


def reply_id(command: str) -> str:
    """Identifier the answer to `command` starts with (`SI` -> `S`, `@` -> `I4`); the command name otherwise."""
    name = command.split(" ", 1)[0]
    return REPLY_ID.get(name, name)


def _decode(line: bytes) -> str:
    if not isinstance(line, (bytes, bytearray)):
        raise BalanceProtocolError(f"reply must be bytes, got {type(line).__name__}")
    raw = bytes(line)
    if raw.endswith(TERMINATOR):
        raw = raw[: -len(TERMINATOR)]
    if len(raw) > MAX_LINE:
        raise BalanceProtocolError(f"reply longer than {MAX_LINE} bytes", reply=bytes(line))
    if not raw or any(b < 0x20 or b > 0x7E for b in raw):
        raise BalanceProtocolError(f"not an MT-SICS reply line: {bytes(line)!r}", reply=bytes(line))
    return raw.decode("ascii")


def parse_reply(line: bytes, command: str | None = None) -> Reply:
    """Parse one answer line; status I / + / - / L and ES / ET / EL raise their typed errors.

    With `command`, the answer must belong to it (its identifier and a status that command can give).
    """
    text = _decode(line)
    cmd = command or ""
    if text in _GENERAL_ERRORS:
        names = {"ES": "syntax error", "ET": "transmission error", "EL": "logical error"}
        raise _GENERAL_ERRORS[text](f"balance answered {text} ({names[text]}) to {cmd!r}", command=cmd, reply=line)
    m = _LINE.fullmatch(text)
    if m is None:
        raise BalanceProtocolError(f"not an MT-SICS reply line: {text!r}", command=cmd, reply=line)
    rid, status, data = m["id"], m["status"], m["data"]
    if command is not None and rid != reply_id(command):
        raise BalanceProtocolError(f"answer {text!r} does not belong to command {command!r}", command=cmd, reply=line)
    if status in _STATUS_ERRORS:
        cls, what = _STATUS_ERRORS[status]
        if data:
            raise BalanceProtocolError(f"status {status} with data: {text!r}", command=cmd, reply=line)
        raise cls(f"balance answered {text!r} to {cmd or rid!r}: {what}", command=cmd, reply=line)
    if rid in WEIGHT_STATUS:
        if status not in WEIGHT_STATUS[rid]:
            raise BalanceProtocolError(f"unexpected status {status!r} in {text!r}", command=cmd, reply=line)
        return Reply(rid, status, reading=_weight(data, status, line, cmd), data=data)
    if status != "A":
        raise BalanceProtocolError(f"unexpected status {status!r} in {text!r}", command=cmd, reply=line)
    if rid == "I4":
        t = _TEXT.fullmatch(data or "")
        if t is None:
            raise BalanceProtocolError(f"serial number answer without a quoted text: {text!r}", command=cmd, reply=line)
        return Reply(rid, status, text=t["text"], data=data)
    if command is not None and data:
        raise BalanceProtocolError(f"unexpected data in acknowledgement {text!r}", command=cmd, reply=line)
    return Reply(rid, status, data=data)


def _weight(data: str | None, status: str, line: bytes, cmd: str) -> Reading:
    w = _WEIGHT.fullmatch(data or "")
    if w is None:
        raise BalanceProtocolError(f"malformed weight field {data!r}", command=cmd, reply=line)
    value = float(w["value"])  # the pattern admits only plain decimals: always finite, never raises
    return Reading(value=value, unit=w["unit"], stable=status in ("S", "A"))


def parse_weight(line: bytes, command: str) -> Reading:
    """The weight in the answer to `command` (S, SI, T, TA); typed errors otherwise."""
    reply = parse_reply(line, command)
    if reply.reading is None:
        raise BalanceProtocolError(f"no weight in the answer {line!r} to {command!r}", command=command, reply=line)
    return reply.reading


def parse_serial(line: bytes, command: str = "I4") -> str:
    """The serial number in an `I4 A "<sn>"` answer (to I4 or @)."""
    reply = parse_reply(line, command)
    if reply.text is None:
        raise BalanceProtocolError(f"no serial number in {line!r}", command=command, reply=line)
    return reply.text


def parse_ack(line: bytes, command: str) -> None:
    """Check a plain acknowledgement (`Z A`, `TAC A`) of `command`."""
    reply = parse_reply(line, command)
    if reply.reading is not None or reply.text is not None or reply.data:
        raise BalanceProtocolError(f"expected a plain acknowledgement, got {line!r}", command=command, reply=line)
