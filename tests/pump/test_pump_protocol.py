"""Property tests of the pump's pure protocol functions: garbage in -> only typed errors; build -> parse round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.dispenser import errors as E
from hal.dispenser.protocol import (
    ADDRESSES,
    MODELS,
    PumpStatus,
    build_dt_command,
    build_dt_reply,
    build_oem_block,
    build_oem_reply,
    checksum,
    decode_status,
    encode_status,
    next_sequence,
    parse_dt_command,
    parse_dt_reply,
    parse_oem_block,
    parse_oem_reply,
    sequence_byte,
    steps_per_stroke,
    steps_to_volume,
    validate_address,
    volume_to_steps,
)

addresses = st.sampled_from(list(ADDRESSES))
commands = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/"), min_size=1, max_size=40)
data_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
statuses = st.builds(encode_status, st.booleans(), st.integers(0, 15))
PARSERS = [parse_dt_reply, parse_oem_reply, parse_oem_block, parse_dt_command]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda f: f.__name__)
@given(raw=st.binary(max_size=64))
def test_parsers_on_garbage_raise_only_protocol_error(parser, raw: bytes) -> None:
    try:
        parser(raw)
    except E.ProtocolError:
        pass


@given(raw=st.binary(max_size=24), prefix=st.sampled_from([b"/0", b"\x020", b""]), suffix=st.sampled_from([b"\x03\r\n", b"\x03", b""]))
def test_reply_parsers_on_near_miss_frames(raw: bytes, prefix: bytes, suffix: bytes) -> None:
    for parser in (parse_dt_reply, parse_oem_reply):
        try:
            parser(prefix + raw + suffix)
        except E.ProtocolError:
            pass


@given(byte=st.integers(0, 255))
def test_decode_status_accepts_only_0b01x0eeee(byte: int) -> None:
    if byte & 0xD0 == 0x40:
        assert decode_status(byte) == PumpStatus(ready=bool(byte & 0x20), error_code=byte & 0x0F)
    else:
        with pytest.raises(E.ProtocolError):
            decode_status(byte)


def test_status_examples() -> None:
    assert decode_status(0x60) == PumpStatus(True, 0)
    assert decode_status(0x40).busy
    assert decode_status(0x6F) == PumpStatus(True, 15)
    assert encode_status(False, 9) == 0x49


@given(address=addresses, command=commands)
def test_dt_command_round_trip(address: str, command: str) -> None:
    raw = build_dt_command(address, command)
    assert raw == b"/" + address.encode() + command.encode() + b"\r"
    assert parse_dt_command(raw) == (address, command)


@given(status=statuses, data=data_text)
def test_dt_reply_round_trip(status: int, data: str) -> None:
    reply = parse_dt_reply(build_dt_reply(status, data))
    assert reply.status == decode_status(status) and reply.data == data


@given(status=statuses, data=data_text, noise=st.binary(max_size=8).filter(lambda b: 0x02 not in b))
def test_oem_reply_round_trip_ignores_bytes_outside_the_block(status: int, data: str, noise: bytes) -> None:
    reply = parse_oem_reply(noise + build_oem_reply(status, data))
    assert reply.status == decode_status(status) and reply.data == data


@given(address=addresses, seq=st.integers(1, 7), repeat=st.booleans(), command=commands)
def test_oem_block_round_trip_and_checksum(address: str, seq: int, repeat: bool, command: str) -> None:
    raw = build_oem_block(address, seq, command, repeat)
    assert raw[0] == 0x02 and raw[-2] == 0x03
    assert raw[2] == 0x30 | (0x08 if repeat else 0) | seq
    assert checksum(raw) == 0  # XOR over STX..ETX plus the checksum byte cancels out
    block = parse_oem_block(raw)
    assert (block.address, block.sequence, block.repeat, block.data) == (address, seq, repeat, command)


@given(
    status=statuses,
    data=st.text(alphabet="0123456789iobe", max_size=12),
    where=st.integers(0, 100),
    bit=st.integers(0, 7),
)
def test_any_single_bit_flip_of_an_oem_answer_is_detected(status: int, data: str, where: int, bit: int) -> None:
    raw = bytearray(build_oem_reply(status, data))
    raw[where % len(raw)] ^= 1 << bit
    with pytest.raises(E.ProtocolError):
        parse_oem_reply(bytes(raw))


def test_oem_bad_checksum_and_wrong_host_address() -> None:
    good = build_oem_reply(0x60, "3000")
    with pytest.raises(E.ProtocolError, match="checksum"):
        parse_oem_reply(good[:-1] + bytes([good[-1] ^ 1]))
    body = b"\x021`\x03"
    with pytest.raises(E.ProtocolError):
        parse_oem_reply(body + bytes([checksum(body)]))


def test_sequence_numbers_cycle_1_to_7() -> None:
    n, seen = 0, []
    for _ in range(15):
        n = next_sequence(n)
        seen.append(n)
    assert seen == [1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 1]
    for bad in (0, 8, -1):
        with pytest.raises(E.PumpUsageError):
            sequence_byte(bad)


def test_addresses() -> None:
    for a in "123456789:;<=>?":
        assert validate_address(a) == a
    for bad in ("0", "@", "A", "12", "", 1, None):
        with pytest.raises(E.PumpUsageError, match="address"):
            validate_address(bad)  # type: ignore[arg-type]


def test_builders_refuse_bad_command_text() -> None:
    for bad in ("", "Z R", "A/1", "Z\rR", "é"):
        with pytest.raises(E.PumpUsageError):
            build_dt_command("1", bad)
        with pytest.raises(E.PumpUsageError):
            build_oem_block("1", 1, bad)


def test_models_and_resolutions() -> None:
    assert steps_per_stroke("xcalibur", "N0") == 3000 and steps_per_stroke("xcalibur", "N1") == 24000
    assert steps_per_stroke("xlp6000", "N0") == 6000 and steps_per_stroke("xlp6000", "N1") == 48000
    with pytest.raises(E.PumpUsageError, match="xcalibur, xlp6000"):
        steps_per_stroke("xp3000", "N0")
    with pytest.raises(E.PumpUsageError, match="N0, N1"):
        steps_per_stroke("xcalibur", "N2")


@given(
    model=st.sampled_from(list(MODELS)),
    resolution=st.sampled_from(["N0", "N1"]),
    syringe=st.sampled_from([50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0]),
    fraction=st.floats(0.0, 1.0, allow_nan=False),
)
def test_volume_to_steps_within_half_a_step(model: str, resolution: str, syringe: float, fraction: float) -> None:
    stroke = steps_per_stroke(model, resolution)
    volume = fraction * syringe
    step = syringe / stroke
    if volume <= 0 or round(volume * stroke / syringe) < 1:
        with pytest.raises(E.VolumeOutOfRange):
            volume_to_steps(volume, syringe, stroke)
        return
    steps = volume_to_steps(volume, syringe, stroke)
    assert 1 <= steps <= stroke
    assert abs(steps_to_volume(steps, syringe, stroke) - volume) <= step / 2 + 1e-9


@pytest.mark.parametrize("volume", [1000.1, 5000.0, -1.0, 0.0, math.nan, math.inf, 0.1])
def test_volume_out_of_range(volume: float) -> None:
    with pytest.raises(E.VolumeOutOfRange):
        volume_to_steps(volume, 1000.0, 3000)


def test_error_classes_per_code() -> None:
    expected = {
        1: E.InitialisationError, 2: E.InvalidCommand, 3: E.InvalidOperand, 4: E.InvalidCommandSequence,
        6: E.EepromFailure, 7: E.NotInitialised, 9: E.PlungerOverload, 10: E.ValveOverload,
        11: E.PlungerMoveNotAllowed, 15: E.CommandOverflow,
    }
    for code, cls in expected.items():
        err = E.error_for_code(code)
        assert type(err) is cls and err.code == code and isinstance(err, E.PumpError)
    for code in (5, 8, 12, 13, 14):
        err = E.error_for_code(code)
        assert type(err) is E.PumpDeviceError and err.code == code and str(code) in str(err)
    assert issubclass(E.ProtocolError, E.PumpError) and issubclass(E.VolumeOutOfRange, E.PumpError)
    t = E.DispenseTerminated("x", delivered_ul=12.5, requested_ul=100.0)
    assert t.delivered_ul == 12.5
