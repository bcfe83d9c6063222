"""A recorded PLC conversation replays through ReplayOpcUaLink: the driver gives the same answers without a server,
and asking for anything the recording does not hold fails loudly."""

from __future__ import annotations

import pytest

from hal.plc import PlcDriver
from hal.transport.opcua_replay import ReplayOpcUaLink
from hal.transport.wirelog import ReplayMismatch, WireLog

SPEED = 100.0


async def scenario(driver: PlcDriver) -> list[object]:
    """Reads, commands and a positioner move, as the controller does them."""
    results: list[object] = [await driver.read("lamp_id"), await driver.read("lamp_hours")]
    await driver.set_door_lock(True)
    results.append(await driver.read("door_locked"))
    await driver.move_positioner(5, timeout_s=30.0)
    results.append(await driver.read("positioner_current"))
    return results


async def test_recorded_session_replays_identically(plc: PlcDriver, wire_log: WireLog) -> None:
    wire_log.events.clear()  # record from here: the connect-time node checks are not replayed
    live = await scenario(plc)
    replay_link = ReplayOpcUaLink(list(wire_log.events))
    replayed = PlcDriver("opc.tcp://replay:4840", plc.nodes, link=replay_link, clock_speed=SPEED)
    assert await scenario(replayed) == live
    assert replay_link.finished


async def test_replay_refuses_an_unrecorded_request(plc: PlcDriver, wire_log: WireLog) -> None:
    wire_log.events.clear()
    await plc.read("lamp_id")
    replayed = PlcDriver("opc.tcp://replay:4840", plc.nodes, link=ReplayOpcUaLink(list(wire_log.events)))
    with pytest.raises(ReplayMismatch):
        await replayed.read("hepa_dp_pa")
