"""Driver against the MT-SICS emulator over a real pty: every answer, both faults, errors, wire log and replay."""

from __future__ import annotations

import os
import tty
from pathlib import Path

import pytest

from hal.balance import (
    BalanceBusy,
    BalanceLinkLost,
    BalanceLogicalError,
    BalanceNotStable,
    BalanceOverload,
    BalanceSyntaxError,
    BalanceTimeout,
    BalanceTransmissionError,
    BalanceUnderload,
    BalanceUnitError,
    MtSicsBalance,
)
from hal.balance.protocol import TERMINATOR, build_command, parse_reply
from hal.transport import ReplayLink, ReplayMismatch, WireLog
from hal.transport.serial_link import SerialLink
from sim.balance import BalanceEmulator
from sim.clock import SimClock
from sim.world import World, WorldSettings

SPEED = 100.0  # same as the fixtures' clock (conftest.SPEED)


def vial_on_pan(world: World, position: int = 1) -> None:
    """Index vial `position` onto the balance and wait out the move (not the settling)."""
    assert world.move_positioner(position)
    world.clock.sleep(world.s.positioner_move_s + 0.01)


def test_fixture_speed_matches(speed: float) -> None:
    assert speed == SPEED


def test_identity_and_reset(balance: MtSicsBalance, emulator: BalanceEmulator) -> None:
    assert balance.identity() == "B123456789"
    assert balance.serial_number() == "B123456789"
    emulator.tare_g = 1.0
    assert balance.reset() == "B123456789"
    assert emulator.tare_g == 0.0


def test_tare_dispense_net_weight(balance: MtSicsBalance, world: World) -> None:
    vial_on_pan(world, 1)
    tare = balance.tare()  # waits on the balance for the vial to settle
    assert tare.stable and tare.unit == "g"
    assert tare.value == pytest.approx(world.vial_tare_g(1), abs=0.0005)
    assert balance.tare_value().value == pytest.approx(tare.value, abs=1e-4)
    world.dispense(500.0)
    net = balance.weigh_stable(timeout_s=10.0)
    assert net.stable
    assert net.value == pytest.approx(0.500 * world.s.density_g_ml, abs=0.0005)


def test_weigh_now_dynamic_then_stable(balance: MtSicsBalance, world: World) -> None:
    world.s.balance_settle_s = 20.0  # 0.2 s real: room for SI to catch the load moving even on a busy machine
    vial_on_pan(world, 1)
    world.clock.sleep(world.s.balance_settle_s + 0.1)
    assert balance.weigh_now().stable
    world.dispense(250.0)
    moving = balance.weigh_now()
    assert not moving.stable  # S D
    world.clock.sleep(world.s.balance_settle_s + 0.1)
    settled = balance.weigh_now()
    assert settled.stable and settled.value == pytest.approx(world.vial_tare_g(1) + 0.25, abs=0.0005)


def test_weigh_stable_waits_on_the_balance(balance: MtSicsBalance, world: World, emulator: BalanceEmulator) -> None:
    assert world.move_positioner(1)  # still moving: the balance holds S until the vial has settled
    reading = balance.weigh_stable(timeout_s=10.0)
    assert reading.stable and reading.value == pytest.approx(world.vial_tare_g(1), abs=0.0005)
    assert emulator.commands == ["S"]


def test_weigh_stable_retries_after_s_i() -> None:
    world = World(SimClock(speed=SPEED), WorldSettings(balance_settle_s=5.0))  # longer than the balance's 3 s
    emu = BalanceEmulator(world)
    path = emu.start()
    bal = MtSicsBalance.open(path, clock_speed=SPEED)
    try:
        vial_on_pan(world, 1)
        reading = bal.weigh_stable(timeout_s=20.0)
        assert reading.stable
        assert emu.commands.count("S") >= 2  # first S answered S I, the driver asked again
    finally:
        bal.close()
        emu.stop()


def test_zero_and_clear_tare(balance: MtSicsBalance, world: World) -> None:
    vial_on_pan(world, 1)
    balance.zero()
    assert balance.weigh_stable().value == pytest.approx(0.0, abs=0.0005)
    world.dispense(100.0)
    assert balance.tare().value == pytest.approx(0.1, abs=0.0005)
    assert balance.weigh_stable().value == pytest.approx(0.0, abs=0.0005)
    balance.clear_tare()
    assert balance.tare_value().value == 0.0
    assert balance.weigh_stable().value == pytest.approx(0.1, abs=0.0005)


def test_preset_tare(balance: MtSicsBalance, world: World) -> None:
    assert balance.preset_tare(1.25).value == pytest.approx(1.25)
    assert balance.tare_value().value == pytest.approx(1.25)
    with pytest.raises(BalanceLogicalError):  # TA L
        balance.preset_tare(-1.0)


def test_empty_pan_at_home_zeroes(balance: MtSicsBalance, world: World) -> None:
    world.move_positioner(0)  # home: no vial on the pan, the empty pan settles and zeroes
    balance.zero()
    assert abs(balance.weigh_stable(10.0).value) < 0.001


def test_fault_unstable(balance: MtSicsBalance, world: World, emulator: BalanceEmulator) -> None:
    vial_on_pan(world, 1)
    world.faults.inject("balance.unstable")
    with pytest.raises(BalanceNotStable) as info:
        balance.weigh_stable(timeout_s=4.0)
    assert info.value.reply == b"S I\r\n"
    assert isinstance(info.value, BalanceBusy)
    assert not balance.weigh_now().stable  # S D
    with pytest.raises(BalanceBusy):
        balance.tare()  # T I
    with pytest.raises(BalanceBusy):
        balance.zero()  # Z I
    world.faults.clear("balance.unstable")
    assert balance.weigh_stable().stable


def test_fault_overload(balance: MtSicsBalance, world: World) -> None:
    vial_on_pan(world, 1)
    world.faults.inject("balance.overload")
    for call in (balance.weigh_stable, balance.weigh_now, balance.tare, balance.zero):
        with pytest.raises(BalanceOverload):
            call()


def test_fault_on_next_command(balance: MtSicsBalance, world: World) -> None:
    from sim.faults import FaultSpec

    vial_on_pan(world, 1)
    world.faults.schedule(FaultSpec(name="balance.overload", on_next_command=True))
    with pytest.raises(BalanceOverload):
        balance.weigh_now()


def test_underload(balance: MtSicsBalance, world: World) -> None:
    vial_on_pan(world, 1)
    balance.zero()
    world.s.positioner_move_s = 100.0  # the pan stays empty for a while
    assert world.move_positioner(2)
    with pytest.raises(BalanceUnderload):
        balance.weigh_now()  # S -
    with pytest.raises(BalanceUnderload):
        balance.weigh_stable()  # S -
    with pytest.raises(BalanceUnderload):
        balance.tare()  # T -


def test_unit_mismatch() -> None:
    world = World(SimClock(speed=SPEED))
    emu = BalanceEmulator(world, unit="mg")
    path = emu.start()
    strict = MtSicsBalance.open(path, clock_speed=SPEED)
    try:
        with pytest.raises(BalanceUnitError, match="set the balance's host unit to g"):
            strict.tare_value()
    finally:
        strict.close()
    in_mg = MtSicsBalance.open(path, clock_speed=SPEED, unit="mg")
    try:
        assert in_mg.preset_tare(250.0).value == pytest.approx(250.0)
    finally:
        in_mg.close()
        emu.stop()


def test_unknown_command_and_bad_bytes_over_the_wire(emulator: BalanceEmulator) -> None:
    assert emulator.path is not None
    link = SerialLink(emulator.path, device="balance")
    try:
        for command in ("XYZ", "S 1", "s", "TA 1"):
            with pytest.raises(BalanceSyntaxError):
                parse_reply(link.exchange(build_command(command), terminator=TERMINATOR), command)
        with pytest.raises(BalanceTransmissionError):
            parse_reply(link.exchange(b"S\xff\r\n", terminator=TERMINATOR), "S")
        with pytest.raises(BalanceLogicalError):
            parse_reply(link.exchange(build_command("TA 1.0 kg"), terminator=TERMINATOR), "TA")
    finally:
        link.close()


def test_wire_log_record_and_replay(emulator: BalanceEmulator, world: World, tmp_path: Path) -> None:
    assert emulator.path is not None
    log = WireLog(tmp_path / "wire.jsonl")
    live = MtSicsBalance.open(emulator.path, wire_log=log, clock_speed=SPEED)
    vial_on_pan(world, 1)

    def session(bal: MtSicsBalance) -> list[object]:
        out: list[object] = [bal.identity(), bal.tare()]
        world.dispense(300.0)
        out += [bal.weigh_stable(), bal.weigh_now(), bal.tare_value()]
        bal.clear_tare()
        try:
            bal.preset_tare(-5.0)
        except BalanceLogicalError as exc:
            out.append(exc.reply)
        return out

    recorded = session(live)
    live.close()
    log.close()
    events = WireLog.load(tmp_path / "wire.jsonl")
    assert [e.dir for e in events[:2]] == ["tx", "rx"] and bytes.fromhex(events[0].data) == b"I4\r\n"
    replay = ReplayLink(events, "balance")
    replayed = session(MtSicsBalance(replay, clock_speed=SPEED))
    assert replayed == recorded and replay.finished
    with pytest.raises(ReplayMismatch):
        MtSicsBalance(ReplayLink(events, "balance")).zero()


def test_replay_without_reply_is_a_timeout() -> None:
    log = WireLog()
    log.record("balance", "tx", b"SI\r\n")
    with pytest.raises(BalanceTimeout):
        MtSicsBalance(ReplayLink(log.events, "balance")).weigh_now()


def test_silent_line_times_out() -> None:
    master, slave = os.openpty()  # a pty nobody answers on
    tty.setraw(slave)
    try:
        bal = MtSicsBalance.open(os.ttyname(slave), reply_timeout_s=0.1)
        with pytest.raises(BalanceTimeout, match="no answer to 'SI'"):  # a typed error, however long it took
            bal.weigh_now()
        bal.close()
    finally:
        os.close(master)
        os.close(slave)


def test_line_gone(balance: MtSicsBalance, emulator: BalanceEmulator) -> None:
    assert balance.identity() == "B123456789"
    emulator.stop()
    with pytest.raises((BalanceLinkLost, BalanceTimeout)):
        balance.weigh_now()


def test_open_bad_port(tmp_path: Path) -> None:
    with pytest.raises(BalanceLinkLost, match="cannot open balance port"):
        MtSicsBalance.open(str(tmp_path / "no-such-tty"))


def test_a_link_closed_by_its_owner_is_not_reopened(emulator: BalanceEmulator) -> None:
    """A task still running after its session closed the port must not take it back (it would hold the exclusive
    lock, and every later controller on that port is refused); `open()` again is the owner's explicit choice."""
    from hal.transport.errors import LinkClosed

    assert emulator.path is not None
    link = SerialLink(emulator.path, device="balance", exclusive=True)
    try:
        parse_reply(link.exchange(build_command("I4"), terminator=TERMINATOR), "I4")
        link.close()
        with pytest.raises(LinkClosed, match="closed by its owner"):
            link.exchange(build_command("I4"), terminator=TERMINATOR)
        assert not link.is_open
        other = SerialLink(emulator.path, device="balance", exclusive=True)
        other.open()  # the port is free: nobody took it back
        other.close()
        link.open()
        parse_reply(link.exchange(build_command("I4"), terminator=TERMINATOR), "I4")
    finally:
        link.close()
