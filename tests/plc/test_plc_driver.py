"""PlcDriver against the simulated PLC over loopback OPC UA: reads, subscriptions, commands, positioner, faults."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.plc import PlcBadNode, PlcDriver, PlcError, PlcWriteRefused, PositionerFault, PositionerTimeout
from hal.plc.driver import move_result
from hal.plc.signals import SIGNALS, readable_signals, subscribed_signals
from hal.transport.wirelog import WireLog
from sim.plc import PlcServer
from sim.world import World

SPEED = 100.0  # as tests/plc/conftest.py (modules do not import conftest)


def recorder(driver: PlcDriver) -> list[tuple[str, Any, float | None]]:
    seen: list[tuple[str, Any, float | None]] = []
    driver.on_change(lambda signal, value, ts: seen.append((signal, value, ts)))
    return seen


async def test_reads_every_signal_with_its_type(plc: PlcDriver) -> None:
    for name in readable_signals():
        value = await plc.read(name)
        assert type(value) is SIGNALS[name].type, (name, value)
    many = await plc.read_many(["lamp_id", "hepa_dp_pa", "door_closed"])
    assert many["lamp_id"] == "UVC-254-0007"
    assert 100 < many["hepa_dp_pa"] < 150
    assert many["door_closed"] is True
    assert plc.connected


async def test_snapshot_holds_every_subscribed_signal_with_timestamps(plc: PlcDriver, until: Any) -> None:
    await until(lambda: set(plc.snapshot()) == set(subscribed_signals()))
    snap = plc.snapshot()
    assert all(sample.timestamp is not None for sample in snap.values())
    assert snap["door_closed"].value is True
    assert snap["hepa_fan_running"].value is True


async def test_lamp_on_raises_irradiance_by_notification(plc: PlcDriver, sim_world: World, until: Any) -> None:
    seen = recorder(plc)
    count = await plc.read("lamp_switch_count")
    await plc.set_lamp(True)
    assert sim_world.lamp_on()
    # warm-up is 60 simulated seconds to 90 %: at SPEED it takes well under a second of real time
    await until(lambda: any(s == "uv_ref_mw_cm2" and v > 0.5 for s, v, _ in seen))
    ref = [v for s, v, _ in seen if s == "uv_ref_mw_cm2"]
    assert ref == sorted(ref), "irradiance rises monotonically during warm-up"
    assert await plc.read("lamp_on") is True
    assert await plc.read("lamp_switch_count") == count + 1
    tip = plc.snapshot()["uv_tip_mw_cm2"].value
    assert 0 < tip < plc.snapshot()["uv_ref_mw_cm2"].value
    await plc.set_lamp(False)
    await until(lambda: plc.snapshot()["uv_ref_mw_cm2"].value == 0.0)
    assert not sim_world.lamp_on()


async def test_lamp_failure_fault(plc: PlcDriver, sim_world: World, until: Any) -> None:
    await plc.set_lamp(True)
    await until(lambda: plc.snapshot()["uv_ref_mw_cm2"].value > 0.1)
    sim_world.faults.inject("uv.lamp_failure")
    await until(lambda: plc.snapshot()["uv_ref_mw_cm2"].value == 0.0)
    assert await plc.read_many(["lamp_on", "lamp_fault"]) == {"lamp_on": False, "lamp_fault": True}
    await plc.set_lamp(False)


async def test_door_open_fault_is_notified(plc: PlcDriver, sim_world: World, until: Any) -> None:
    seen = recorder(plc)
    sim_world.faults.inject("door.open")
    await until(lambda: ("door_closed", False) in [(s, v) for s, v, _ in seen])
    await until(lambda: plc.snapshot()["door_locked"].value is False)
    sim_world.faults.clear("door.open")
    await until(lambda: plc.snapshot()["door_closed"].value is True)


async def test_door_lock_command_reaches_the_world(plc: PlcDriver, sim_world: World, until: Any) -> None:
    await plc.set_door_lock(False)
    assert sim_world.door_lock_commanded is False
    await until(lambda: plc.snapshot()["door_locked"].value is False)
    assert await plc.read("door_lock_command") is False
    await plc.set_door_lock(True)
    await until(lambda: plc.snapshot()["door_locked"].value is True)


async def test_positioner_moves_and_reports_in_position(plc: PlcDriver, sim_world: World) -> None:
    await plc.move_positioner(7, timeout_s=5.0)
    assert sim_world.positioner_state() == (7, True)
    state = await plc.read_many(["positioner_target", "positioner_current", "positioner_in_position"])
    assert state == {"positioner_target": 7, "positioner_current": 7, "positioner_in_position": True}
    await plc.move_positioner(8)
    await plc.move_positioner(8)  # already there: in position at once
    assert sim_world.positioner.current == 8


async def test_positioner_jam_raises_fault(plc: PlcDriver, sim_world: World, until: Any) -> None:
    sim_world.faults.inject("positioner.jam")
    with pytest.raises(PositionerFault, match="fault"):
        await plc.move_positioner(11, timeout_s=5.0)
    await until(lambda: plc.snapshot()["positioner_fault"].value is True)
    assert plc.snapshot()["positioner_in_position"].value is False
    sim_world.faults.clear("positioner.jam")
    await plc.move_positioner(11, timeout_s=5.0)  # the jam cleared: the pending move completes


async def test_positioner_timeout(plc: PlcDriver, sim_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # a move that takes a simulated day cannot arrive within 0.05 s, however late the driver looks (a busy machine)
    monkeypatch.setattr(sim_world.s, "positioner_move_s", 86_400.0)
    with pytest.raises(PositionerTimeout, match="not in position 13"):
        await plc.move_positioner(13, timeout_s=0.05)
    sim_world.stop_positioner()  # the next test starts with the positioner at rest


async def test_positioner_out_of_range_is_refused(plc: PlcDriver) -> None:
    with pytest.raises(PlcWriteRefused, match="Move"):
        await plc.move_positioner(10_000_000)
    with pytest.raises(PlcError, match="int"):
        await plc.move_positioner(True)  # type: ignore[arg-type]


async def test_hepa_fan_failure_visible(plc: PlcDriver, sim_world: World, until: Any) -> None:
    sim_world.faults.inject("hepa.fan_failure")
    await until(lambda: plc.snapshot()["hepa_fan_running"].value is False)
    await until(lambda: plc.snapshot()["hepa_fault"].value is True)
    await until(lambda: plc.snapshot()["hepa_dp_pa"].value < 20)
    await until(lambda: plc.snapshot()["downflow_m_s"].value < 0.1)
    sim_world.faults.clear("hepa.fan_failure")
    await until(lambda: plc.snapshot()["hepa_fan_running"].value is True)


async def test_particle_burst_visible_in_next_sample(plc: PlcDriver, sim_world: World, until: Any) -> None:
    await until(lambda: "particle_sample_seq" in plc.snapshot())
    seq = plc.snapshot()["particle_sample_seq"].value
    sim_world.faults.inject("particles.burst")
    # one sample per 60 simulated seconds: at most ~0.6 s real for the next one, burst in the one after at worst
    await until(lambda: plc.snapshot()["particle_sample_seq"].value >= seq + 2)
    assert plc.snapshot()["particles_0_5um_per_m3"].value > 3520
    assert plc.snapshot()["particle_flow_l_min"].value == pytest.approx(28.3, abs=1.0)


async def test_client_side_checks(plc: PlcDriver) -> None:
    with pytest.raises(PlcError, match="write"):
        await plc.write("lamp_on", True)
    with pytest.raises(PlcError, match="takes a bool"):
        await plc.write("lamp_command", 1)
    with pytest.raises(PlcError, match="unknown PLC signal"):
        await plc.read("lamp_colour")


async def test_server_refuses_write_to_read_only_node(ready_plc: PlcServer, no_tasks_left: Any) -> None:
    sim_plc = ready_plc
    nodes = dict(sim_plc.nodes, lamp_command=sim_plc.nodes["lamp_on"])  # a config mistake the server catches
    async with PlcDriver(sim_plc.endpoint, nodes, clock_speed=SPEED) as driver:
        with pytest.raises(PlcWriteRefused, match="lamp_command"):
            await driver.set_lamp(True)
    await no_tasks_left()


@pytest.mark.parametrize(
    ("signal", "node_id", "why"),
    [
        ("lamp_hours", "ns=2;s=UV.NoSuchNode", "no such node"),
        ("positioner_move", "ns=2;s=Positioner.Current", "expected a Method"),
        ("lamp_id", "ns=2;s=UV.LampHours", "expected a str"),
        ("positioner_object", "ns=7;i=4242", "no such node"),
    ],
)
async def test_bad_node_id_names_the_signal(
    ready_plc: PlcServer, signal: str, node_id: str, why: str, no_tasks_left: Any
) -> None:
    sim_plc = ready_plc
    driver = PlcDriver(sim_plc.endpoint, dict(sim_plc.nodes, **{signal: node_id}))
    with pytest.raises(PlcBadNode, match=why) as info:
        await driver.connect()
    assert info.value.signal == signal and info.value.node_id == node_id
    assert signal in str(info.value) and node_id in str(info.value)
    assert not driver.connected
    await no_tasks_left()


async def test_wire_log_records_every_call(plc: PlcDriver, wire_log: WireLog) -> None:
    await plc.read("lamp_hours")
    await plc.set_door_lock(True)
    await plc.move_positioner(3)
    events = [(e.dir, json.loads(e.data)) for e in wire_log.events if e.device == "plc"]
    ops = [(d, data.get("op")) for d, data in events]
    assert ("call", "connect") in ops and ("result", "connect") in ops
    assert ("call", "subscribe") in ops and ("result", "notify") in ops
    writes = [data for d, data in events if d == "call" and data.get("op") == "write"]
    assert writes[-1] == {"op": "write", "node": "ns=2;s=Door.LockCommand", "value": True, "type": "Boolean"}
    calls = [data for d, data in events if d == "call" and data.get("op") == "call"]
    assert calls[-1]["method"] == "ns=2;s=Positioner.Move" and calls[-1]["args"] == [3]
    results = [data for d, data in events if d == "result" and data.get("op") == "read"]
    assert any(r["value"] == [pytest.approx(r["value"][0])] for r in results)


@given(st.one_of(st.booleans(), st.none(), st.integers(), st.lists(st.one_of(st.booleans(), st.none(), st.integers()),
                                                                    max_size=3)))
def test_move_result_reads_one_or_two_outputs(result: Any) -> None:
    """A PLC's Move may return `accepted` alone or `[accepted, in_position]`; only a True pair means arrived."""
    accepted, arrived = move_result(result)
    if isinstance(result, list):
        assert accepted == (result[0] if result else None)
        assert arrived == (len(result) > 1 and result[0] is True and result[1] is True)
    else:
        assert (accepted, arrived) == (result, False)
