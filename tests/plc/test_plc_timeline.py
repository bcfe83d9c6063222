"""The simulated PLC on a shared timeline (--speed max): every particle sample is published in order, even when
simulated time jumps over several sample intervals at once, and reads see the world as it is now."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Iterator

import pytest

from hal.plc import PlcDriver, PositionerFault
from sim.clock import SimClock, Timeline
from sim.runner import PLC_LINK_CHECK_S
from sim.world import World

HANG_GUARD_S = 30.0  # only so a broken link cannot hang the suite


@pytest.fixture
def timeline_world(tmp_path: Path) -> World:
    Timeline(tmp_path / "timeline", create=True, rate=2000.0, burst=1000.0).close()
    return World(SimClock(timeline=tmp_path / "timeline"))


@pytest.fixture
def timeline_plc(timeline_world: World, plc_server_thread: Any) -> Iterator[Any]:
    runner = plc_server_thread(timeline_world)
    try:
        yield runner.start()
    finally:
        runner.stop()


async def test_every_sample_of_a_jump_arrives_in_order(timeline_world: World, timeline_plc: Any) -> None:
    clock = timeline_world.clock
    driver = PlcDriver(timeline_plc.endpoint, timeline_plc.nodes, timeout_s=5.0, link_check_s=PLC_LINK_CHECK_S,
                       clock_speed=clock.speed)
    await driver.connect()
    try:
        seqs: list[tuple[int, float | None]] = []
        counts: dict[float | None, float] = {}
        five = asyncio.Event()

        def seen(signal: str, value: Any, stamp: float | None) -> None:
            if signal == "particles_0_5um_per_m3":
                counts[stamp] = value
            elif signal == "particle_sample_seq":
                seqs.append((value, stamp))
                if len(seqs) >= 5:
                    five.set()

        driver.on_change(seen)
        start = clock.now()
        await asyncio.to_thread(clock.sleep, 5 * timeline_world.s.particle_sample_s)  # five samples due at once
        assert clock.now() == pytest.approx(start + 5 * timeline_world.s.particle_sample_s)
        await asyncio.wait_for(five.wait(), HANG_GUARD_S)
        numbers = [n for n, _ in seqs]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # none skipped, none repeated
        stamps = [t for _, t in seqs]
        assert all(b - a == pytest.approx(timeline_world.s.particle_sample_s) for a, b in zip(stamps, stamps[1:]))
        assert {t for t in counts if t is not None and t >= stamps[0]} <= set(stamps)  # counts carry their sample's time
    finally:
        await driver.close()


async def test_a_read_sees_the_positioner_arrive_without_waiting_for_a_tick(timeline_world: World,
                                                                           timeline_plc: Any) -> None:
    clock = timeline_world.clock
    driver = PlcDriver(timeline_plc.endpoint, timeline_plc.nodes, timeout_s=5.0, link_check_s=PLC_LINK_CHECK_S,
                       clock_speed=clock.speed)
    await driver.connect()
    try:
        timeline_world.move_positioner(7)  # arrives 0.8 s later in simulated time, which stands still
        assert (await driver.read_many(["positioner_in_position", "positioner_current"]))["positioner_current"] != 7
        await asyncio.to_thread(clock.sleep, timeline_world.s.positioner_move_s)
        state = await driver.read_many(["positioner_in_position", "positioner_current"])
        assert state == {"positioner_in_position": True, "positioner_current": 7}
    finally:
        await driver.close()


async def test_a_move_on_the_timeline_ends_at_the_arrival_in_the_move_call(tmp_path: Path, timeline_world: World,
                                                                           timeline_plc: Any) -> None:
    """On a timeline the simulator's Move moves time to the arrival and returns in position: one round trip, no
    pause and no read (decision 0019, fourth amendment)."""
    from fillfinish.clock import Clock

    sim_clock = timeline_world.clock
    ctl_clock = Clock(timeline=sim_clock.timeline.path)  # the controller's side of the same timeline file
    driver = PlcDriver(timeline_plc.endpoint, timeline_plc.nodes, timeout_s=5.0, link_check_s=PLC_LINK_CHECK_S,
                       clock_speed=ctl_clock.speed, pause=ctl_clock.device_asleep)
    await driver.connect()
    reads = 0
    read_many = driver.read_many

    async def counted(names: Any) -> Any:
        nonlocal reads
        reads += 1
        return await read_many(names)

    driver.read_many = counted  # type: ignore[method-assign]
    try:
        start = ctl_clock.now()
        await asyncio.wait_for(driver.move_positioner(9, timeout_s=30.0), HANG_GUARD_S)
        # the Move moved time to the arrival it announced: no time past it, and nothing left to read
        assert ctl_clock.now() - start == pytest.approx(timeline_world.s.positioner_move_s)
        assert reads == 0
        assert timeline_world.positioner_state() == (9, True)
        timeline_world.faults.inject("positioner.jam")  # a jammed positioner: Move returns at once, the driver
        with pytest.raises(PositionerFault):            # reads and finds the fault
            await asyncio.wait_for(driver.move_positioner(3, timeout_s=30.0), HANG_GUARD_S)
        assert reads == 1
    finally:
        timeline_world.faults.clear("positioner.jam")
        await driver.close()
