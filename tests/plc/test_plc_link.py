"""Link loss and reconnect: plc.server_stop is reported by event at once, the driver reconnects on the same port,
re-creates its subscriptions and reports the link up again; nothing is left running after close()."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from hal.plc import PlcDriver, PlcLinkLost
from hal.transport.wirelog import WireLog
from sim.faults import FaultSpec
from sim.plc import PlcServer
from sim.world import World

SPEED = 100.0  # as tests/plc/conftest.py (modules do not import conftest)


class LinkEvents:
    """Records on_link callbacks with their real arrival time."""

    def __init__(self, driver: PlcDriver) -> None:
        self.events: list[tuple[float, bool, str]] = []
        driver.on_link(lambda up, reason: self.events.append((time.monotonic(), up, reason)))

    def first(self, up: bool) -> float | None:
        return next((t for t, u, _ in self.events if u is up), None)


async def test_server_stop_reported_at_once_then_reconnects(
    plc: PlcDriver, sim_plc: PlcServer, sim_world: World, wire_log: WireLog, until: Any
) -> None:
    link = LinkEvents(plc)
    port = sim_plc.port
    t0 = time.monotonic()
    sim_world.faults.inject("plc.server_stop", duration_s=1.0 * SPEED)  # one real second down
    # no reads: the loss must arrive by itself
    await until(lambda: link.first(False) is not None, timeout=1.0, step=0.002)
    lost_after = link.first(False) - t0  # type: ignore[operator]
    assert lost_after < 0.3, f"link loss reported {lost_after:.3f} s after the server stopped"
    assert not plc.connected
    with pytest.raises(PlcLinkLost):
        await plc.read("lamp_hours")  # fails fast while down, no waiting for a deadline
    await until(lambda: link.first(True) is not None, timeout=6.0)
    assert sim_plc.port == port and sim_plc.restarts >= 1
    assert plc.connected
    assert link.events[0][1] is False and link.events[-1][1] is True
    # the subscriptions came back: a command's effect is notified again
    await plc.set_door_lock(False)
    await until(lambda: plc.snapshot()["door_locked"].value is False)
    await plc.set_door_lock(True)
    await until(lambda: plc.snapshot()["door_locked"].value is True)
    ops = [json.loads(e.data).get("op") for e in wire_log.events]
    assert ops.count("link") >= 2 and ops.count("subscribe") >= 4  # call + result, before and after the outage


async def test_stop_on_next_plc_command(plc: PlcDriver, sim_world: World, until: Any) -> None:
    link = LinkEvents(plc)
    sim_world.faults.schedule(FaultSpec(name="plc.server_stop", on_next_command=True, duration_s=0.3 * SPEED))
    await asyncio.sleep(0.1)
    assert link.events == [] and plc.connected  # armed, not yet active
    await plc.set_door_lock(True)  # the command that trips it
    await until(lambda: link.first(False) is not None, timeout=1.0, step=0.002)
    await until(lambda: link.first(True) is not None, timeout=6.0)
    assert await plc.read("door_closed") is True


async def test_close_while_reconnecting_leaves_nothing_running(
    ready_plc: PlcServer, sim_world: World, until: Any, no_tasks_left: Any
) -> None:
    sim_plc = ready_plc
    driver = PlcDriver(sim_plc.endpoint, sim_plc.nodes, clock_speed=SPEED, reconnect_backoff=(0.05, 0.1))
    await driver.connect()
    link = LinkEvents(driver)
    sim_world.faults.inject("plc.server_stop", duration_s=2.0 * SPEED)
    try:
        await until(lambda: link.first(False) is not None, timeout=1.0)
        await asyncio.sleep(0.3)  # a few failed reconnect attempts
    finally:
        await driver.close()
        await no_tasks_left()
        sim_world.faults.clear()
    await until(lambda: sim_plc.listening, timeout=2.0)


async def test_connect_to_nothing_is_a_typed_error(no_tasks_left: Any) -> None:
    driver = PlcDriver("opc.tcp://127.0.0.1:1/fillfinish/plc", dict(_nodes()), timeout_s=0.5)
    with pytest.raises(PlcLinkLost, match="connect"):
        await driver.connect()
    await no_tasks_left()


def _nodes() -> dict[str, str]:
    from sim.plc import DEFAULT_NODES

    return dict(DEFAULT_NODES)
