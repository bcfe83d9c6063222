"""MT-SICS protocol functions: command building, every answer form, typed errors on garbage (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from hal.balance.protocol import (
    Reading,
    build_command,
    parse_ack,
    parse_reply,
    parse_serial,
    parse_weight,
    reply_id,
    tare_preset_command,
)
from sim.balance import UNITS, format_weight_line

PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


def test_build_command() -> None:
    assert build_command("S") == b"S\r\n"
    assert build_command("TA 1.0000 g") == b"TA 1.0000 g\r\n"


@pytest.mark.parametrize("bad", ["", "S\r", "S\n", "S\r\nZ", "Sé", "\x00", " S", "S ", "X" * 300])
def test_build_command_rejects(bad: str) -> None:
    with pytest.raises(BalanceCommandError, match="invalid balance command"):
        build_command(bad)


def test_build_command_rejects_non_str() -> None:
    with pytest.raises(BalanceCommandError):
        build_command(b"S")  # type: ignore[arg-type]


@given(PRINTABLE)
def test_build_command_round_trip(cmd: str) -> None:
    assert build_command(cmd).decode("ascii") == cmd + "\r\n"


@pytest.mark.parametrize(
    ("line", "command", "expected"),
    [
        (b"S S      0.2514 g\r\n", "S", Reading(0.2514, "g", True)),  # the form in the device brief
        (b"S S     0.2514 g\r\n", "S", Reading(0.2514, "g", True)),  # 10-wide field
        (b"S D     -1.0030 g\r\n", "SI", Reading(-1.003, "g", False)),
        (b"S S      3.2000 g\r\n", "SI", Reading(3.2, "g", True)),
        (b"T S      3.1987 g\r\n", "T", Reading(3.1987, "g", True)),
        (b"TA A      0.0000 g\r\n", "TA", Reading(0.0, "g", True)),
        (b"TA A      1.0000 g\r\n", "TA 1.0000 g", Reading(1.0, "g", True)),
        (b"S S     251.4 mg", "S", Reading(251.4, "mg", True)),
    ],
)
def test_weight_answers(line: bytes, command: str, expected: Reading) -> None:
    assert parse_weight(line, command) == expected


def test_serial_and_acks() -> None:
    assert parse_serial(b'I4 A "B123456789"\r\n') == "B123456789"
    assert parse_serial(b'I4 A "B123456789"\r\n', "@") == "B123456789"
    assert parse_serial(b'I4 A ""\r\n') == ""
    parse_ack(b"Z A\r\n", "Z")
    parse_ack(b"TAC A\r\n", "TAC")
    assert reply_id("SI") == "S" and reply_id("@") == "I4" and reply_id("TA 1 g") == "TA"


@pytest.mark.parametrize("rid", ["S", "Z", "T"])
@pytest.mark.parametrize(
    ("status", "error"), [("I", BalanceBusy), ("+", BalanceOverload), ("-", BalanceUnderload), ("L", BalanceLogicalError)]
)
def test_status_answers(rid: str, status: str, error: type[BalanceError]) -> None:
    line = f"{rid} {status}\r\n".encode()
    with pytest.raises(error) as info:
        parse_reply(line, rid)
    assert info.value.reply == line and info.value.command == rid


@pytest.mark.parametrize(
    ("line", "error"), [(b"ES\r\n", BalanceSyntaxError), (b"ET\r\n", BalanceTransmissionError), (b"EL\r\n", BalanceLogicalError)]
)
def test_general_errors(line: bytes, error: type[BalanceError]) -> None:
    with pytest.raises(error):
        parse_reply(line, "S")


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"", "S"),
        (b"\r\n", "S"),
        (b"S S\r\n", "S"),  # weight missing
        (b"S S 1e5 g\r\n", "S"),  # exponent
        (b"S S nan g\r\n", "S"),
        (b"S S 0.25\r\n", "S"),  # unit missing
        (b"S A 0.25 g\r\n", "S"),  # wrong status for S
        (b"T D 0.25 g\r\n", "T"),
        (b"Z A\r\n", "S"),  # answer to another command
        (b"S S 0.25 g\r\n", "T"),
        (b"Z A extra\r\n", "Z"),
        (b"S I extra\r\n", "S"),
        (b"I4 A B123\r\n", "I4"),  # unquoted
        (b"S S 0.25 g\rS S 1.0 g\r\n", "S"),
        (b"S S \xb50.25 g\r\n", "S"),
        (b"\x00\x01\x02", "S"),
    ],
)
def test_malformed_lines(line: bytes, command: str) -> None:
    with pytest.raises(BalanceProtocolError):
        parse_reply(line, command)


def test_ack_is_not_a_weight() -> None:
    with pytest.raises(BalanceProtocolError):
        parse_weight(b"TAC A\r\n", "TAC")
    with pytest.raises(BalanceProtocolError):
        parse_serial(b"Z A\r\n", "Z")


def test_tare_preset_command() -> None:
    assert tare_preset_command(1.25) == "TA 1.2500 g"
    with pytest.raises(BalanceCommandError):
        tare_preset_command(float("nan"))


COMMANDS = st.sampled_from(["S", "SI", "Z", "T", "TA", "TAC", "I4", "@", None])


@given(st.binary(max_size=300), COMMANDS)
def test_parser_on_arbitrary_bytes_raises_only_balance_errors(data: bytes, command: str | None) -> None:
    try:
        parse_reply(data, command)
    except BalanceError:
        pass


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60), COMMANDS)
def test_parser_on_arbitrary_ascii_lines_raises_only_balance_errors(text: str, command: str | None) -> None:
    try:
        parse_reply(text.encode() + b"\r\n", command)
    except BalanceError:
        pass


@given(
    st.sampled_from([("S", "S", "S"), ("S", "D", "SI"), ("T", "S", "T"), ("TA", "A", "TA")]),
    st.floats(min_value=-220.0, max_value=220.0, allow_nan=False),
    st.sampled_from(sorted(UNITS)),
)
def test_emulator_weight_lines_round_trip(kind: tuple[str, str, str], grams: float, unit: str) -> None:
    rid, status, command = kind
    factor, decimals = UNITS[unit]
    line = format_weight_line(rid, status, grams * factor, unit, decimals)
    reading = parse_weight(line, command)
    assert reading.unit == unit
    assert reading.stable == (status != "D")
    assert reading.value == pytest.approx(round(grams * factor, decimals), abs=10**-decimals)
