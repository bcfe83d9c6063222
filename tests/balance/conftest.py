"""Fixtures for the balance tests: a fast world, the MT-SICS emulator on a real pty, the driver opened on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hal.balance import MtSicsBalance
from hal.transport import WireLog
from sim.balance import BalanceEmulator
from sim.clock import SimClock
from sim.world import World, WorldSettings

SPEED = 100.0  # simulated seconds per real second


@pytest.fixture
def speed() -> float:
    """The clock speed the fixtures use (drivers pass it as clock_speed)."""
    return SPEED


@pytest.fixture
def world() -> World:
    """A world on a clock 100 x faster than the wall."""
    return World(SimClock(speed=SPEED), WorldSettings())


@pytest.fixture
def emulator(world: World) -> Iterator[BalanceEmulator]:
    """The balance emulator serving a pty."""
    emu = BalanceEmulator(world)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def wire_log() -> WireLog:
    """An in-memory wire log."""
    return WireLog()


@pytest.fixture
def balance(emulator: BalanceEmulator, wire_log: WireLog) -> Iterator[MtSicsBalance]:
    """The driver on the emulator's pty, logging the wire."""
    assert emulator.path is not None
    bal = MtSicsBalance.open(emulator.path, wire_log=wire_log, clock_speed=SPEED)
    yield bal
    bal.close()

