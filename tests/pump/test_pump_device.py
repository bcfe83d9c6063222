"""The CavroPump driver against the pump emulator over a real pty: moves, liquid, every error code, faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from hal.dispenser import (
    CavroPump,
    CommandOverflow,
    DispenseOutcomeUnknown,
    DispenseTerminated,
    InitialisationError,
    InvalidCommand,
    InvalidCommandSequence,
    InvalidOperand,
    NotInitialised,
    PlungerMoveNotAllowed,
    PlungerOverload,
    ProtocolError,
    PumpLinkLost,
    PumpTimeout,
    PumpUsageError,
    ValveOverload,
    VolumeOutOfRange,
)
from sim.faults import FaultSpec


def run_in_thread(fn: Callable[..., Any], *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run fn(*args) in a thread; returns (thread, box) where box gets 'result' or 'error'."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll predicate until it holds; `timeout` (real s) only guards against a hang, it bounds nothing."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never came true"
        time.sleep(0.002)


# -- set-up and reports ---------------------------------------------------------------------------------------------
def test_initialise_reports_and_identity(pump: CavroPump) -> None:
    assert pump.status().ready and pump.status().error_code == 0
    assert pump.position_steps() == 0
    assert pump.valve_position() == "input"
    assert pump.speeds() == {"start": 900, "top": 1400, "cutoff": 900}
    counters = pump.counters()
    assert counters["init"] >= 1
    assert "XCalibur" in pump.firmware()
    assert "xcalibur" in pump.identity() and "address 1" in pump.identity()


def test_y_initialise_with_ports_and_speed(pump: CavroPump) -> None:
    pump.initialise(force=1, ccw=True)
    pump.set_speed(2000, start=100, cutoff=800)
    assert pump.speeds() == {"start": 100, "top": 2000, "cutoff": 800}
    with pytest.raises(PumpUsageError, match="top speed"):
        pump.set_speed(7000)
    with pytest.raises(PumpUsageError, match="force"):
        pump.initialise(force=3)


def test_resolution_n1_changes_steps_not_volume(pump: CavroPump) -> None:
    pump.aspirate(100.0)
    assert pump.position_steps() == 300
    pump.set_resolution("N1")
    assert pump.steps_per_stroke == 24000
    assert pump.position_steps() == 2400
    assert pump.volume_in_syringe_ul() == pytest.approx(100.0)
    pump.aspirate(12.5)  # 300 microsteps
    assert pump.position_steps() == 2700
    pump.set_resolution("N0")
    assert pump.volume_in_syringe_ul() == pytest.approx(112.333, abs=0.34)


def test_aspirate_and_dispense_end_up_in_the_vials(pump: CavroPump, world, emulator, place_vial) -> None:
    drawn_before = emulator.reservoir_drawn_ul
    assert pump.aspirate(500.0) == pytest.approx(500.0)
    assert emulator.reservoir_drawn_ul - drawn_before == pytest.approx(500.0)
    pump.valve("output")
    assert pump.valve_position() == "output"
    place_vial(11)
    assert pump.dispense(200.0) == pytest.approx(200.0)
    place_vial(12)
    assert pump.dispense(150.0) == pytest.approx(150.0)
    assert world.vials[11] == pytest.approx(200.0) and world.vials[12] == pytest.approx(150.0)
    assert [e.position for e in world.dispensed[-2:]] == [11, 12]
    assert pump.volume_in_syringe_ul() == pytest.approx(150.0)
    pump.valve("input")
    returned_before = emulator.reservoir_returned_ul
    pump.dispense(150.0)  # back to the reservoir, not into a vial
    assert emulator.reservoir_returned_ul - returned_before == pytest.approx(150.0)
    assert world.vials[12] == pytest.approx(150.0)


def test_dispense_without_a_vial_spills(pump: CavroPump, world) -> None:
    pump.aspirate(30.0)
    pump.valve("output")
    spilled = world.spilled_ul
    world.faults.inject("positioner.jam")  # never in position: nothing under the tip
    try:
        pump.dispense(30.0)
    finally:
        world.faults.clear("positioner.jam")
    assert world.spilled_ul - spilled == pytest.approx(30.0)
    assert world.dispensed[-1].position is None


def test_volume_checks_against_the_syringe_contents(pump: CavroPump) -> None:
    pump.aspirate(100.0)
    with pytest.raises(VolumeOutOfRange, match="holds 100.000 uL"):
        pump.dispense(150.0)
    with pytest.raises(VolumeOutOfRange, match="free"):
        pump.aspirate(950.0)


def test_volume_out_of_range_is_refused_before_anything_is_sent(pump: CavroPump, tx_events) -> None:
    sent = len(tx_events(pump))
    for bad in (1000.5, 0.0, -5.0, float("nan"), 0.1):
        with pytest.raises(VolumeOutOfRange):
            pump.aspirate(bad)
        with pytest.raises(VolumeOutOfRange):
            pump.dispense(bad)
    with pytest.raises(VolumeOutOfRange):
        pump.move_absolute(3001)
    with pytest.raises(PumpUsageError):
        pump.valve("sideways")
    assert len(tx_events(pump)) == sent


# -- error codes -------------------------------------------------------------------------------------------------
def test_every_move_before_init_is_error_7(make_emulator, make_pump) -> None:
    emu = make_emulator()
    drv = make_pump(emu.path)
    with pytest.raises(NotInitialised):
        drv.aspirate(10.0)
    with pytest.raises(NotInitialised):
        drv.valve("output")
    with pytest.raises(NotInitialised):
        drv.move_absolute(100)
    assert drv.status().error_code == 0  # reported once, then cleared
    drv.initialise()
    drv.aspirate(10.0)


def test_invalid_command_operand_and_sequence(pump: CavroPump) -> None:
    with pytest.raises(InvalidCommand):
        pump.command("E2000R")
    with pytest.raises(InvalidCommand):
        pump.command("zR")  # commands are case-sensitive
    with pytest.raises(InvalidCommand):
        pump.command("?99")
    with pytest.raises(InvalidOperand):
        pump.command("A3001R")  # past the end of the stroke
    with pytest.raises(InvalidOperand):
        pump.command("A12.5R")  # not an integer
    with pytest.raises(InvalidOperand):
        pump.command("V9000R")
    with pytest.raises(InvalidCommandSequence):
        pump.command("P10GR")  # loop end without its start
    assert pump.status().error_code == 0
    assert pump.position_steps() == 0  # nothing of a refused string ran


def test_chained_string_error_reported_by_q(pump: CavroPump) -> None:
    pump.command("A300A3500R")  # first move runs, second is out of range: error on a later answer
    with pytest.raises(InvalidOperand):
        pump.wait_ready(1.0, "chained")
    assert pump.position_steps() == 300


def test_plunger_move_not_allowed_in_bypass(pump: CavroPump) -> None:
    pump.valve("bypass")
    assert pump.valve_position() == "bypass"
    with pytest.raises(PlungerMoveNotAllowed):
        pump.aspirate(10.0)
    pump.valve("input")
    pump.aspirate(10.0)


def test_command_overflow_while_busy(pump: CavroPump) -> None:
    pump.set_speed(200)  # 3,000 steps take 15 s simulated = 75 ms real
    pump.command("A3000R")
    assert pump.status().busy
    with pytest.raises(CommandOverflow):
        pump.command("A0R")
    with pytest.raises(CommandOverflow):
        pump.command("OR")
    pump.wait_ready(pump.move_seconds(3000), "move")
    assert pump.position_steps() == 3000  # the running move carried on


def test_plunger_overload_is_sticky_until_init(pump: CavroPump, world) -> None:
    world.faults.inject("pump.plunger_overload")
    with pytest.raises(PlungerOverload):
        pump.aspirate(50.0)
    with pytest.raises(PlungerOverload):
        pump.query()
    with pytest.raises(PlungerOverload):
        pump.position_steps()
    assert pump.status().error_code == 9
    pump.initialise()
    assert pump.status().error_code == 0
    pump.aspirate(50.0)
    assert pump.position_steps() == 150


def test_init_error_is_sticky_until_a_good_init(pump: CavroPump, world) -> None:
    world.faults.inject("pump.plunger_overload")
    with pytest.raises(InitialisationError):
        pump.initialise()
    with pytest.raises(InitialisationError):
        pump.aspirate(10.0)
    pump.initialise()
    pump.aspirate(10.0)


def test_valve_overload(pump: CavroPump, world) -> None:
    world.faults.inject("pump.valve_overload")
    with pytest.raises(ValveOverload):
        pump.valve("output")
    assert pump.valve_position() == "input"
    pump.valve("output")
    assert pump.valve_position() == "output"


def test_fault_on_next_command_arms_at_that_command(pump: CavroPump, world) -> None:
    world.faults.schedule(FaultSpec(name="pump.valve_overload", on_next_command=True))
    pump.aspirate(10.0)  # ? and P arm it; the first valve move takes it
    with pytest.raises(ValveOverload):
        pump.valve("output")


# -- terminate ----------------------------------------------------------------------------------------------------
def test_terminate_mid_dispense_reports_the_partial_volume(pump: CavroPump, emulator, world, place_vial,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pump.aspirate(900.0)
    pump.valve("output")
    place_vial(21)
    pump.set_speed(5)  # 2,700 steps take 540 s simulated = 2.7 s real: terminate lands mid-move even on a busy machine
    moving = threading.Event()
    handle = emulator._handle

    def spy(text: str) -> Any:
        """The emulator's command handler; signals once the D move has been accepted and runs."""
        answer = handle(text)
        if text.startswith("D") and emulator._busy():
            moving.set()
        return answer

    monkeypatch.setattr(emulator, "_handle", spy)
    thread, box = run_in_thread(pump.dispense, 900.0)
    assert moving.wait(10), f"the dispense never started moving: {box}"
    started = world.clock.now()
    wait_until(lambda: world.clock.now() >= started + 20.0)  # 100 of the 2,700 steps have moved
    pump.terminate()
    thread.join(timeout=5)
    err = box.get("error")
    assert isinstance(err, DispenseTerminated), box
    assert 0 < err.delivered_ul < 900.0 and err.requested_ul == 900.0
    assert world.dispensed[-1].position == 21
    assert world.dispensed[-1].volume_ul == pytest.approx(err.delivered_ul)
    assert world.vials[21] == pytest.approx(err.delivered_ul)
    assert pump.volume_in_syringe_ul() == pytest.approx(900.0 - err.delivered_ul)


# -- faults on the line -----------------------------------------------------------------------------------------------
def test_silent_pump_times_out(pump: CavroPump, world, tx_events) -> None:
    world.faults.inject("pump.silent")
    pump.reply_timeout_s = 0.1  # nothing answers anyway: no need to wait the tolerant reply time
    sent = len(tx_events(pump))
    with pytest.raises(PumpTimeout):
        pump.query()
    assert len(tx_events(pump)) - sent == 3  # a report is asked three times, then given up (no wall-clock bound)
    with pytest.raises(PumpTimeout):
        pump.valve("output")  # a move: sent once, not retried
    assert len(tx_events(pump)) - sent == 4
    world.faults.clear("pump.silent")
    pump.reply_timeout_s = 1.0
    pump.query()


def test_silence_during_a_dispense_makes_the_outcome_unknown(pump: CavroPump, world, emulator, tx_events) -> None:
    pump.aspirate(500.0)
    pump.valve("output")
    pump.set_speed(10)  # 1,200 steps take 120 s simulated = 0.6 s real: the silence starts mid-move even under load
    thread, box = run_in_thread(pump.dispense, 400.0)
    wait_until(emulator.busy)
    world.faults.inject("pump.silent")
    thread.join(timeout=5)
    world.faults.clear("pump.silent")
    assert isinstance(box.get("error"), DispenseOutcomeUnknown), box
    assert isinstance(box["error"].__cause__, PumpTimeout)
    assert sum(1 for tx in tx_events(pump) if tx.startswith(b"/1D")) == 1  # never resent


def test_garbled_answer(pump: CavroPump, world) -> None:
    world.faults.inject("pump.garbled")
    pump.query()  # a report: resent after the garbled answer
    world.faults.inject("pump.garbled")
    with pytest.raises(ProtocolError):
        pump.valve("output")  # a move is not resent in DT mode
    pump.wait_ready(1.0, "valve")
    assert pump.valve_position() == "output"  # it did move: only the answer was damaged


def test_line_gone(make_emulator, make_pump, world) -> None:
    emu = make_emulator()
    drv = make_pump(emu.path)
    drv.initialise()
    world.faults.inject("pump.line_gone")
    try:
        with pytest.raises(PumpLinkLost):
            wait_until(lambda: drv.query() is None)  # until the emulator has closed its end (raises PumpLinkLost)
    finally:
        world.faults.clear("pump.line_gone")


def test_line_gone_during_a_dispense(make_emulator, make_pump, world) -> None:
    emu = make_emulator()
    drv = make_pump(emu.path)
    drv.initialise()
    drv.aspirate(500.0)
    drv.valve("output")
    drv.set_speed(10)  # 1,500 steps take 150 s simulated = 0.75 s real: the line goes mid-move even under load
    thread, box = run_in_thread(drv.dispense, 500.0)
    wait_until(emu.busy)
    world.faults.inject("pump.line_gone")
    try:
        thread.join(timeout=5)
    finally:
        world.faults.clear("pump.line_gone")
    assert isinstance(box.get("error"), DispenseOutcomeUnknown), box
    assert isinstance(box["error"].__cause__, PumpLinkLost)


# -- OEM protocol ---------------------------------------------------------------------------------------------------
def test_oem_mode_moves_and_sequence_numbers(make_emulator, make_pump, world, place_vial, tx_events) -> None:
    emu = make_emulator(address="3")
    drv = make_pump(emu.path, address="3", protocol="oem")
    drv.initialise()
    assert emu.mode == "oem"
    drv.aspirate(250.0)
    drv.valve("output")
    place_vial(31)
    drv.dispense(100.0)
    assert world.vials[31] == pytest.approx(100.0)
    seqs = [tx[2] & 0x07 for tx in tx_events(drv)]
    assert all(tx[0] == 0x02 and tx[1:2] == b"3" for tx in tx_events(drv))
    assert seqs[:9] == [1, 2, 3, 4, 5, 6, 7, 1, 2][: len(seqs[:9])]
    assert all(b == a % 7 + 1 for a, b in zip(seqs, seqs[1:]))  # no repeats: every answer arrived


def test_oem_lost_answer_is_resent_with_the_repeat_bit_and_not_executed_twice(
    make_emulator, make_pump, world, tx_events
) -> None:
    emu = make_emulator(address="2")
    drv = make_pump(emu.path, address="2", protocol="oem", retries=5)
    drv.initialise()
    # the answer to the first P block is lost (the line is silent for exactly that answer); the resend gets through
    lost: list[bytes] = []
    seen = bytearray()
    feed = emu.feed

    def feed_losing_first_p(data: bytes) -> list[bytes]:
        """The emulator's input; its answers to the first block carrying P are dropped, as on a noisy line."""
        replies = feed(data)
        seen.extend(data)
        if not lost and replies and b"P300R" in seen:
            lost.extend(replies)
            return []
        return replies

    emu.feed = feed_losing_first_p  # type: ignore[method-assign]
    drv.command("P300R")
    assert lost, "the first answer was not lost"
    drv.wait_ready(1.0, "aspirate")
    assert drv.position_steps() == 300  # executed once, however often it was sent
    p_blocks = [tx for tx in tx_events(drv) if tx[3:4] == b"P"]
    assert len(p_blocks) >= 2  # one lost answer and its resend (more only if a resend's answer is late)
    assert p_blocks[0][2] & 0x08 == 0 and all(b[2] & 0x08 for b in p_blocks[1:])
    assert len({b[2] & 0x07 for b in p_blocks}) == 1 and len(set(p_blocks[1:])) == 1


def test_oem_garbled_answer_is_resent_and_not_executed_twice(make_emulator, make_pump, world, place_vial) -> None:
    emu = make_emulator(address="4")
    drv = make_pump(emu.path, address="4", protocol="oem")
    drv.initialise()
    drv.aspirate(300.0)
    drv.valve("output")
    place_vial(41)
    before = len(world.dispensed)
    world.faults.inject("pump.garbled")
    drv.command("D300R")  # bad checksum on the answer: resent with the repeat bit
    drv.wait_ready(1.0, "dispense")
    assert len(world.dispensed) == before + 1
    assert world.vials[41] == pytest.approx(100.0)


def test_oem_silent_pump_times_out_after_the_retries(make_emulator, make_pump, world, tx_events) -> None:
    emu = make_emulator(address="5")
    drv = make_pump(emu.path, address="5", protocol="oem", retries=2)
    drv.initialise()
    drv.reply_timeout_s = 0.1  # nothing answers anyway: no need to wait the tolerant reply time
    world.faults.inject("pump.silent")
    try:
        with pytest.raises(PumpTimeout):
            drv.query()
    finally:
        world.faults.clear("pump.silent")
    q_blocks = [tx for tx in tx_events(drv)[-3:]]
    assert [b[2] & 0x08 for b in q_blocks] == [0, 8, 8]


def test_xlp6000_model_and_its_stroke(make_emulator, make_pump) -> None:
    emu = make_emulator(address="8", model="xlp6000", syringe_ul=2500.0)
    drv = make_pump(emu.path, address="8", model="xlp6000", syringe_ul=2500.0, resolution="N1")
    drv.initialise()
    assert drv.steps_per_stroke == 48000
    drv.aspirate(500.0)
    assert drv.position_steps() == 9600
    assert emu.contents_ul == pytest.approx(500.0)
    assert "XLP6000" in drv.firmware()


# -- completion without a poll granule --------------------------------------------------------------------------------
def test_completion_is_asked_for_when_the_move_should_end(make_emulator, make_pump, tx_events, world) -> None:
    world.faults.clear()
    emulator = make_emulator()  # its own line: the module's emulator may have been cut by a line_gone test
    pauses: list[float] = []

    def pause(real_s: float) -> None:
        """The driver's wait between status questions, recorded (and really waited)."""
        pauses.append(real_s)
        time.sleep(real_s)

    drv = make_pump(emulator.path, pause=pause)
    drv.initialise()
    drv.valve("input")
    drv.aspirate(500.0)
    drv.valve("output")
    drv.set_speed(20)  # a move much longer than one exchange
    pauses.clear()
    sent = len(tx_events(drv))
    assert drv.dispense(250.0) == pytest.approx(250.0)
    steps = drv.steps_for(250.0)
    expected = drv.motion_seconds(steps) / drv.clock_speed
    # at most one wait, to the move's end (less what the D exchange took; none if that exchange outlasted the move)
    assert len(pauses) <= 1 and all(0 < p <= expected for p in pauses)
    after_d = tx_events(drv)[sent:]
    d_at = next(i for i, tx in enumerate(after_d) if tx.startswith(b"/1D"))
    assert after_d[d_at + 1 :].count(b"/1Q\r") == 1  # the move had ended when the pump was first asked
