"""The pump driver on a shared timeline (--speed max): a move's wait is machine time, so the first status question
after a dispense finds the pump ready, and the simulated time spent is the move's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from fillfinish.clock import Clock
from hal.dispenser import CavroPump
from hal.transport.wirelog import WireLog
from sim.clock import SimClock, Timeline
from sim.dispenser import PumpEmulator
from sim.world import World


def test_a_dispense_on_the_timeline_asks_q_once(tmp_path: Path) -> None:
    Timeline(tmp_path / "timeline", create=True, rate=2000.0, burst=1000.0).close()
    world = World(SimClock(timeline=tmp_path / "timeline"))
    emu = PumpEmulator(world, address="1", syringe_ul=1000.0)
    emu.start()
    clock = Clock(timeline=tmp_path / "timeline")
    pump = CavroPump.open(emu.path, wire_log=WireLog(), syringe_ul=1000.0, clock_speed=clock.speed,
                          pause=clock.device_sleep, reply_timeout_s=5.0)  # a generous answer time: no timing here
    try:
        pump.initialise()
        pump.aspirate(500.0)
        pump.valve("output")
        pump.set_speed(200)
        before = len(pump.link.wire_log.events)
        start = clock.now()
        assert pump.dispense(100.0) == pytest.approx(100.0)
        sent = [bytes.fromhex(e.data) for e in list(pump.link.wire_log.events)[before:] if e.dir == "tx"]
        assert [s for s in sent if b"Q" in s] == [b"/1Q\r"]  # ready at the first question
        motion_s = pump.motion_seconds(pump.steps_for(100.0))
        assert clock.now() - start >= motion_s  # the move's own time passed, in simulated time
        assert clock.now() - start < motion_s + 1.0  # and not a poll granule more (line times are milliseconds)
    finally:
        pump.close()
        emu.stop()
