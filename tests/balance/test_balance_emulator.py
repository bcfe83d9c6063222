"""The MT-SICS emulator's line handling on its own (feed), and its answers checked by the driver's parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.balance.errors import BalanceError
from hal.balance.protocol import parse_reply, parse_serial
from sim.balance import BalanceEmulator, format_weight_line
from sim.clock import SimClock
from sim.world import World


def make(**kw: object) -> BalanceEmulator:
    return BalanceEmulator(World(SimClock(speed=1000.0)), stable_timeout_s=0.05, **kw)  # type: ignore[arg-type]


def test_weight_field_is_right_aligned_in_ten() -> None:
    assert format_weight_line("S", "S", 0.2514, "g", 4) == b"S S     0.2514 g\r\n"
    assert format_weight_line("S", "D", -0.00001, "g", 4) == b"S D     0.0000 g\r\n"  # no "-0.0000"
    assert format_weight_line("T", "S", 123.45678, "g", 4) == b"T S   123.4568 g\r\n"


def test_feed_buffers_until_cr_lf() -> None:
    emu = make(serial_number="SN42")
    assert emu.feed(b"I") == []
    assert emu.feed(b"4\r") == []
    assert emu.feed(b"\nI4\r\nTAC\r\n") == [b'I4 A "SN42"\r\n', b'I4 A "SN42"\r\n', b"TAC A\r\n"]
    assert emu.commands == ["I4", "I4", "TAC"]


def test_feed_errors() -> None:
    emu = make()
    assert emu.feed(b"\r\n") == [b"ES\r\n"]
    assert emu.feed(b"s\r\n") == [b"ES\r\n"]  # commands are upper case
    assert emu.feed(b"S\x00\r\n") == [b"ET\r\n"]
    assert emu.feed(b"X" * 300) == [b"ET\r\n"]  # runaway line without CR LF
    assert emu.feed(b"TA 1.0 lb\r\n") == [b"TA L\r\n"]


def test_reset_clears_tare() -> None:
    emu = make()
    assert emu.feed(b"TA 2.5 g\r\n") == [b"TA A     2.5000 g\r\n"]
    assert parse_serial(emu.feed(b"@\r\n")[0], "@") == "B123456789"
    assert emu.feed(b"TA\r\n") == [b"TA A     0.0000 g\r\n"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="allowed: g, mg, kg"):
        make(unit="lb")
    with pytest.raises(ValueError, match="serial number"):
        make(serial_number='a"b')


def test_commands_notify_faults() -> None:
    from sim.faults import FaultSpec

    emu = make()
    emu.world.faults.schedule(FaultSpec(name="balance.overload", on_next_command=True))
    assert emu.feed(b"SI\r\n") == [b"S +\r\n"]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_get_answers_the_driver_can_classify(data: bytes) -> None:
    emu = make()
    for line in emu.feed(data + b"\r\n"):
        assert line.endswith(b"\r\n")
        try:
            parse_reply(line)
        except BalanceError:
            pass
