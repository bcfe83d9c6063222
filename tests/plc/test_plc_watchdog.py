"""The simulated PLC's own safety program, over OPC UA: the line claim (one owner), the controller heartbeat watchdog
(lamp off, positioner stopped, alarm latched when the heartbeat stops) and door open -> lamp off without a
controller."""

from __future__ import annotations

from typing import Any

import pytest

from hal.plc import PlcDriver
from hal.plc.guard import LineClaimed, PlcLineGuard
from sim.plc import PlcServer
from sim.runner import PLC_LINK_CHECK_S, PLC_REQUEST_TIMEOUT_S
from sim.world import World

WATCHDOG_S = 30.0  # simulated seconds (0.3 s real at the module's speed 100)


@pytest.fixture
def guard_plc(ready_plc: PlcServer) -> PlcServer:
    ready_plc.guard.watchdog_s = WATCHDOG_S
    ready_plc.guard.owner = ""
    ready_plc.guard.tripped, ready_plc.guard.alarm = False, ""
    ready_plc.guard._lamp_off_at = None
    return ready_plc


async def _second_driver(server: PlcServer, speed: float) -> PlcDriver:
    other = PlcDriver(server.endpoint, server.nodes, timeout_s=PLC_REQUEST_TIMEOUT_S,
                      link_check_s=PLC_LINK_CHECK_S, clock_speed=speed)
    await other.connect()
    return other


async def test_heartbeat_stops_then_plc_switches_lamp_off_within_watchdog_time(
        guard_plc: PlcServer, plc: PlcDriver, sim_world: World, clock_speed: float, until: Any) -> None:
    guard = PlcLineGuard(plc, "line-1", what="test", clock_speed=clock_speed)
    await guard.claim("B-1")
    assert "B-1" in await plc.read("line_owner")
    await plc.set_lamp(True)
    await plc.write("line_heartbeat", 12345)  # one more beat, then the controller "dies": no more heartbeats
    await guard.stop_heartbeat()
    snap = plc.snapshot
    await until(lambda: snap()["watchdog_tripped"].value and not snap()["lamp_on"].value)
    v = await plc.read_many(["lamp_on", "lamp_command", "line_last_heartbeat", "plc_alarm_time", "plc_alarm",
                             "line_owner", "door_locked"])
    assert v["lamp_on"] is False and v["lamp_command"] is False, "the PLC switched the lamp off by itself"
    assert "heartbeat lost" in v["plc_alarm"]
    assert v["line_owner"] == "", "the lease ran out: the line is free"
    assert v["door_locked"] is True, "the door stays locked while the lamp may still be hot"
    late = v["plc_alarm_time"] - v["line_last_heartbeat"]
    # never before the watchdog time; how soon after it is the PLC scan's real-time latency (bench/, not a test bound)
    assert WATCHDOG_S < late, f"lamp off {late:.1f} s after the last heartbeat"
    # the next controller records the alarm, then resets it (only the holder may)
    assert not await guard.reset_alarm()
    fresh = PlcLineGuard(plc, "line-1", clock_speed=clock_speed)
    await fresh.claim()
    alarm = await fresh.alarm()
    assert alarm.tripped and "heartbeat lost" in alarm.message
    assert await fresh.reset_alarm()
    assert not (await fresh.alarm()).tripped
    await fresh.release()


async def test_one_owner_per_line(guard_plc: PlcServer, plc: PlcDriver, clock_speed: float) -> None:
    first = PlcLineGuard(plc, "line-1", what="fillfinish run", clock_speed=clock_speed)
    await first.claim("B-7")
    other = await _second_driver(guard_plc, clock_speed)
    try:
        second = PlcLineGuard(other, "line-1", what="fillfinish run", clock_speed=clock_speed)
        with pytest.raises(LineClaimed) as refused:
            await second.claim()
        assert "batch B-7" in str(refused.value) and "pid" in str(refused.value)
        await first.release()
        await second.claim()  # free again after a release, and the watchdog was disarmed without a trip
        assert not (await second.alarm()).tripped
        await second.release()
    finally:
        await other.close()


async def test_door_opened_with_lamp_on_plc_switches_it_off(guard_plc: PlcServer, plc: PlcDriver,
                                                            sim_world: World, until: Any) -> None:
    await plc.set_lamp(True)
    await until(lambda: plc.snapshot()["lamp_on"].value)
    sim_world.faults.inject("door.open")
    await until(lambda: not plc.snapshot()["lamp_on"].value and plc.snapshot()["plc_alarm"].value)
    assert "door opened" in plc.snapshot()["plc_alarm"].value
    assert not sim_world.lamp.commanded
