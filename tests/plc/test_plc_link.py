"""Link loss and reconnect: plc.server_stop is reported by event at once, the driver reconnects on the same port,
re-creates its subscriptions and reports the link up again; nothing is left running after close()."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hal.plc import PlcDriver, PlcLinkLost
from hal.transport.wirelog import WireLog
from sim.faults import FaultSpec
from sim.plc import PlcServer
from sim.world import World

SPEED = 100.0  # as tests/plc/conftest.py (modules do not import conftest)


HANG_GUARD_S = 30.0  # only so a broken link cannot hang the suite; no test bounds how fast anything happens


class LinkEvents:
    """Records on_link callbacks in order, with an event per direction to wait on."""

    def __init__(self, driver: PlcDriver) -> None:
        self.events: list[tuple[bool, str]] = []
        self.down, self.up = asyncio.Event(), asyncio.Event()
        driver.on_link(self._seen)

    def _seen(self, up: bool, reason: str) -> None:
        self.events.append((up, reason))
        (self.up if up else self.down).set()

    async def wait(self, up: bool) -> None:
        """Wait for the first report of the link going up (or down)."""
        await asyncio.wait_for((self.up if up else self.down).wait(), HANG_GUARD_S)


async def test_server_stop_reported_at_once_then_reconnects(
    plc: PlcDriver, sim_plc: PlcServer, sim_world: World, wire_log: WireLog, until: Any
) -> None:
    link = LinkEvents(plc)
    port = sim_plc.port
    calls_before = _calls(wire_log)
    sim_world.faults.inject("plc.server_stop")  # down until cleared below (a fixed outage could end too soon under load)
    try:
        await link.wait(False)  # the loss arrives by itself: no request was made to find it
        assert _calls(wire_log) == calls_before
        assert not plc.connected
        with pytest.raises(PlcLinkLost):
            await plc.read("lamp_hours")  # fails at once while down (the link knows), not after a deadline
    finally:
        sim_world.faults.clear("plc.server_stop")
    await link.wait(True)
    assert sim_plc.port == port and sim_plc.restarts >= 1
    assert plc.connected
    assert link.events[0][0] is False and link.events[-1][0] is True
    # the subscriptions came back: a command's effect is notified again
    for locked in (False, True):
        seen = _value_seen(plc, "door_locked", locked)
        await plc.set_door_lock(locked)
        await asyncio.wait_for(seen.wait(), HANG_GUARD_S)
    ops = [json.loads(e.data).get("op") for e in wire_log.events]
    assert ops.count("link") >= 2 and ops.count("subscribe") >= 4  # call + result, before and after the outage


async def test_stop_on_next_plc_command(plc: PlcDriver, sim_world: World, until: Any) -> None:
    link = LinkEvents(plc)
    # no duration: a short outage could be over before the fault supervisor looks on a busy machine; cleared below
    sim_world.faults.schedule(FaultSpec(name="plc.server_stop", on_next_command=True))
    try:
        assert await plc.read("door_closed") is True  # a read is no command: the fault is armed, not active
        assert link.events == [] and plc.connected
        await plc.set_door_lock(True)  # the command that trips it
        await link.wait(False)
    finally:
        sim_world.faults.clear("plc.server_stop")
    await link.wait(True)
    assert await plc.read("door_closed") is True


async def test_close_while_reconnecting_leaves_nothing_running(
    ready_plc: PlcServer, sim_world: World, until: Any, no_tasks_left: Any
) -> None:
    sim_plc = ready_plc
    driver = PlcDriver(sim_plc.endpoint, sim_plc.nodes, clock_speed=SPEED, reconnect_backoff=(0.05, 0.1))
    await driver.connect()
    link = LinkEvents(driver)
    failed = _count_failed_reconnects(driver)
    sim_world.faults.inject("plc.server_stop")  # down until cleared below, however slow the reconnects are
    try:
        await link.wait(False)
        await asyncio.wait_for(failed.wait(), HANG_GUARD_S)  # closed while it keeps trying
    finally:
        await driver.close()
        await no_tasks_left()
        sim_world.faults.clear()
    await until(lambda: sim_plc.listening, timeout=HANG_GUARD_S)  # the server comes back by itself


async def test_connect_to_nothing_is_a_typed_error(no_tasks_left: Any) -> None:
    driver = PlcDriver("opc.tcp://127.0.0.1:1/fillfinish/plc", dict(_nodes()), timeout_s=0.5)
    with pytest.raises(PlcLinkLost, match="connect"):
        await driver.connect()
    await no_tasks_left()


def _value_seen(plc: PlcDriver, signal: str, value: Any) -> asyncio.Event:
    """An event set when a data change of `signal` with `value` arrives."""
    seen = asyncio.Event()
    plc.on_change(lambda name, v, _t: seen.set() if name == signal and v == value else None)
    return seen


def _calls(wire_log: WireLog) -> int:
    """How many reads, writes and method calls the driver has sent (wire-log 'call' events)."""
    return sum(1 for e in wire_log.events if e.dir == "call" and json.loads(e.data).get("op") in ("read", "write", "call"))


def _count_failed_reconnects(driver: PlcDriver, wanted: int = 2) -> asyncio.Event:
    """An event set once the driver's link has failed to reconnect `wanted` times."""
    done, failures = asyncio.Event(), [0]
    link = driver._link
    open_client = link._open_client

    async def counted() -> Any:
        try:
            return await open_client()
        except Exception:
            failures[0] += 1
            if failures[0] >= wanted:
                done.set()
            raise

    link._open_client = counted
    return done


def _nodes() -> dict[str, str]:
    from sim.plc import DEFAULT_NODES

    return dict(DEFAULT_NODES)
