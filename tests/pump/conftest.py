"""Fixtures for the pump tests: a fast simulated world, pump emulators on real ptys, drivers with a wire log."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hal.dispenser import CavroPump
from hal.transport.wirelog import WireLog
from sim.clock import SimClock
from sim.dispenser import PumpEmulator
from sim.world import World

REPLY_S = 1.0  # real s for one answer: the emulator is a thread of this process, starved on a busy machine
SPEED = 200.0  # simulated seconds per real second: a full 3,000-step stroke at 1,400 pulses/s takes ~11 ms


@pytest.fixture(scope="session")
def clock_speed() -> float:
    """The simulated clock's speed in these tests (drivers get it as clock_speed)."""
    return SPEED


@pytest.fixture(scope="module")
def world() -> World:
    """One simulated world per test module, on a fast clock."""
    return World(SimClock(speed=SPEED))


@pytest.fixture(scope="module")
def emulator(world: World) -> Iterator[PumpEmulator]:
    """A DT-mode XCalibur with a 1,000 uL syringe on a pty, shared by a module's tests."""
    emu = PumpEmulator(world, address="1", syringe_ul=1000.0)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def make_emulator(world: World) -> Iterator[Callable[..., PumpEmulator]]:
    """A fresh emulator of its own (for OEM mode, a pulled line, an uninitialised pump), stopped afterwards."""
    made: list[PumpEmulator] = []

    def make(**kw: Any) -> PumpEmulator:
        """Start an emulator on the module's world (kw as PumpEmulator)."""
        kw.setdefault("syringe_ul", 1000.0)
        emu = PumpEmulator(world, **kw)
        emu.start()
        made.append(emu)
        return emu

    yield make
    for emu in made:
        emu.stop()


@pytest.fixture
def make_pump() -> Iterator[Callable[..., CavroPump]]:
    """Open drivers (each with an in-memory wire log at .link.wire_log) and close them afterwards."""
    opened: list[CavroPump] = []

    def make(path: str, **kw: Any) -> CavroPump:
        """Open a driver on `path` (kw as CavroPump.open; clock_speed, syringe_ul and reply_timeout_s defaulted)."""
        kw.setdefault("syringe_ul", 1000.0)
        kw.setdefault("reply_timeout_s", REPLY_S)
        kw.setdefault("clock_speed", SPEED)
        pump = CavroPump.open(path, wire_log=kw.pop("wire_log", None) or WireLog(), **kw)
        opened.append(pump)
        return pump

    yield make
    for pump in opened:
        pump.close()


@pytest.fixture
def pump(world: World, emulator: PumpEmulator, make_pump: Callable[..., CavroPump]) -> CavroPump:
    """A driver on the shared DT emulator, faults cleared, initialised with an empty syringe, valve at input."""
    world.faults.clear()
    drv = make_pump(emulator.path)
    _settle(drv)
    drv.initialise()
    return drv


def _settle(drv: CavroPump) -> None:
    """Wait out whatever an earlier test left running (bounded), and read away a leftover error."""
    deadline = time.monotonic() + 30.0  # hang guard only
    while drv.status().busy and time.monotonic() < deadline:
        time.sleep(0.005)
    drv.status()


@pytest.fixture
def place_vial(world: World) -> Callable[[int], None]:
    """place_vial(n): send the positioner to n and wait (in simulated time) until it is in position."""

    def place(position: int) -> None:
        """Move the positioner and wait for it."""
        assert world.move_positioner(position)
        world.clock.sleep(world.s.positioner_move_s)
        deadline = time.monotonic() + 30.0  # hang guard only
        while world.positioner_state() != (position, True):
            assert time.monotonic() < deadline, "positioner never reached its position"
            world.clock.sleep(0.05)

    return place


@pytest.fixture
def tx_events() -> Callable[[CavroPump], list[bytes]]:
    """tx_events(pump): every request the driver put on the wire so far."""

    def events(drv: CavroPump) -> list[bytes]:
        """The requests in drv's wire log."""
        return [bytes.fromhex(e.data) for e in drv.link.wire_log.events if e.dir == "tx"]

    return events
