"""The wire log: a session recorded against the emulator replays through ReplayLink with the same driver results;
crafted recordings cover answers the emulator has no fault for (EEPROM failure, undocumented codes, a garbled
answer to a dispense)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal.dispenser import (
    CavroPump,
    DispenseOutcomeUnknown,
    EepromFailure,
    ProtocolError,
    PumpDeviceError,
    PumpTimeout,
)
from hal.dispenser.protocol import build_dt_command, build_dt_reply, build_oem_block, build_oem_reply
from hal.transport.wirelog import ReplayLink, ReplayMismatch, WireEvent, WireLog


def session(drv: CavroPump) -> list[object]:
    """A short fill: the results a replay must reproduce."""
    out: list[object] = []
    drv.initialise()
    out.append(drv.firmware())
    out.append(drv.aspirate(400.0))
    drv.valve("output")
    out.append(drv.dispense(150.0))
    out.append(drv.dispense(150.0))
    out.append(drv.position_steps())
    out.append(drv.valve_position())
    out.append(drv.counters())
    out.append(drv.status())
    return out


@pytest.mark.parametrize("protocol", ["dt", "oem"])
def test_record_then_replay_reproduces_the_results(
    make_emulator, tmp_path: Path, protocol: str, clock_speed: float
) -> None:
    emu = make_emulator(address="6")
    path = tmp_path / "pump.jsonl"
    log = WireLog(path)
    drv = CavroPump.open(emu.path, wire_log=log, address="6", syringe_ul=1000.0, clock_speed=clock_speed, protocol=protocol)
    try:
        recorded = session(drv)
    finally:
        drv.close()
        log.close()
    events = WireLog.load(path)
    assert events and {e.device for e in events} == {"pump"}
    link = ReplayLink(events, "pump")
    replayed = session(CavroPump(link, address="6", syringe_ul=1000.0, clock_speed=clock_speed, protocol=protocol))
    assert replayed == recorded
    assert link.finished


def test_replay_fails_loudly_when_the_driver_sends_something_else(make_emulator, clock_speed: float) -> None:
    emu = make_emulator(address="7")
    log = WireLog()
    drv = CavroPump.open(emu.path, wire_log=log, address="7", syringe_ul=1000.0, clock_speed=clock_speed)
    drv.initialise()
    drv.close()
    other = CavroPump(ReplayLink(list(log.events), "pump"), address="7", syringe_ul=1000.0, clock_speed=clock_speed)
    with pytest.raises(ReplayMismatch):
        other.initialise(force=1)


def crafted(pairs: list[tuple[bytes, bytes | None]]) -> ReplayLink:
    """A ReplayLink from (request, reply or None for no answer) pairs."""
    events = []
    for request, reply in pairs:
        events.append(WireEvent(0.0, "pump", "tx", request.hex()))
        if reply is not None:
            events.append(WireEvent(0.0, "pump", "rx", reply.hex()))
    return ReplayLink(events, "pump")


def dt(command: str) -> bytes:
    return build_dt_command("1", command)


def test_eeprom_failure_and_undocumented_codes() -> None:
    link = crafted([(dt("Q"), build_dt_reply(0x66)), (dt("Q"), build_dt_reply(0x65)), (dt("Q"), build_dt_reply(0x68))])
    drv = CavroPump(link, syringe_ul=1000.0)
    with pytest.raises(EepromFailure):
        drv.query()
    for code in (5, 8):
        with pytest.raises(PumpDeviceError) as info:
            drv.query()
        assert type(info.value) is PumpDeviceError and info.value.code == code


def test_garbled_answer_to_a_dt_dispense_is_outcome_unknown_and_never_resent() -> None:
    link = crafted(
        [
            (dt("?"), build_dt_reply(0x60, "900")),
            (dt("D300R"), b"/0\xe0\x03\r\n"),  # impossible status byte
        ]
    )
    drv = CavroPump(link, syringe_ul=1000.0)
    with pytest.raises(DispenseOutcomeUnknown) as info:
        drv.dispense(100.0)
    assert isinstance(info.value.__cause__, ProtocolError)
    assert link.finished  # no resend: a second D would not be in the recording


def test_lost_answer_to_a_dt_report_is_retried_but_not_a_move() -> None:
    link = crafted([(dt("?"), None), (dt("?"), b"/0`12"), (dt("?"), build_dt_reply(0x60, "12")), (dt("IR"), None)])
    drv = CavroPump(link, syringe_ul=1000.0, retries=2)
    assert drv.position_steps() == 12
    with pytest.raises(PumpTimeout):
        drv.valve("input")
    assert link.finished


def test_oem_resends_the_same_block_with_the_repeat_bit() -> None:
    first = build_oem_block("1", 1, "D300R")
    again = build_oem_block("1", 1, "D300R", repeat=True)
    link = crafted(
        [
            (build_oem_block("1", 7, "?"), build_oem_reply(0x60, "900")),
            (first, None),
            (again, build_oem_reply(0x40)),
            (build_oem_block("1", 2, "Q"), build_oem_reply(0x60)),
            (build_oem_block("1", 3, "?"), build_oem_reply(0x60, "600")),
        ]
    )
    drv = CavroPump(link, syringe_ul=1000.0, protocol="oem")
    drv._seq = 6  # the recording starts mid-conversation
    assert drv.dispense(100.0) == pytest.approx(100.0)
    assert link.finished
