"""Fixtures for the PLC tests: the simulated PLC server in its own thread and event loop (started once per module,
as a separate process would be), a fast SimClock, and a driver per test that must leave no task behind."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from hal.plc import PlcDriver
from hal.transport.wirelog import WireLog
from sim.clock import SimClock
from sim.plc import PlcServer
from sim.world import World
from sim.runner import PLC_LINK_CHECK_S, PLC_REQUEST_TIMEOUT_S

SPEED = 100.0  # simulated seconds per real second


class PlcServerThread:
    """A PlcServer running in a background thread with its own asyncio loop (the tests talk to it over loopback)."""

    def __init__(self, world: World, **kwargs: Any) -> None:
        self.world = world
        self.kwargs = kwargs
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sim-plc", daemon=True)
        self.server: PlcServer | None = None

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> PlcServer:
        self.thread.start()

        async def build() -> PlcServer:
            server = PlcServer(self.world, **self.kwargs)
            await server.start()
            return server

        self.server = self.run(build())
        return self.server

    def stop(self) -> None:
        async def shutdown() -> None:
            if self.server is not None:
                await self.server.stop()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:  # asyncua's own leftovers in the simulator's private loop
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            self.run(shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def fresh_world(speed: float = SPEED) -> World:
    """A new world on a fast clock."""
    return World(SimClock(speed=speed))


@pytest.fixture(scope="module")
def sim_world() -> World:
    return fresh_world()


@pytest.fixture(scope="module")
def sim_plc(sim_world: World, opcua_shelf: Any) -> Iterator[PlcServer]:
    """The simulated PLC, no security, shared by the tests of one module."""
    runner = PlcServerThread(sim_world, shelf=opcua_shelf)
    server = runner.start()
    try:
        yield server
    finally:
        runner.stop()


def other_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the running loop other than the caller's."""
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]


async def assert_no_tasks_left() -> None:
    """Fail if anything the driver started is still alive after close()."""
    await asyncio.sleep(0)
    left = other_tasks()
    assert not left, f"tasks left running after close(): {left}"


@pytest.fixture
def wire_log() -> WireLog:
    return WireLog()


@pytest_asyncio.fixture
async def ready_plc(sim_plc: PlcServer, sim_world: World) -> PlcServer:
    """The shared server with no fault left, lamp off, door locked, and listening (a previous test may have
    stopped it with plc.server_stop: it listens again on the next fault-supervisor tick)."""
    sim_world.faults.clear()
    sim_world.set_lamp(False)
    sim_world.set_door_lock(True)
    await wait_for(lambda: sim_plc.listening)
    for _ in range(100):  # and really accepting connections
        try:
            _reader, writer = await asyncio.open_connection(sim_plc.host, sim_plc.port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        break
    return sim_plc


@pytest_asyncio.fixture
async def plc(ready_plc: PlcServer, sim_world: World, wire_log: WireLog) -> AsyncIterator[PlcDriver]:
    """A connected driver; the world's faults are cleared and lamp/door reset around each test."""
    sim_plc = ready_plc
    # the simulator's own link limits (decision 0026), hang guards, not speed bounds: under two CPU burners
    # asyncua's 0.5 s default probe of the fresh connection timed out while the fixture connected (stress s13)
    driver = PlcDriver(sim_plc.endpoint, sim_plc.nodes, wire_log=wire_log, timeout_s=PLC_REQUEST_TIMEOUT_S,
                       link_check_s=PLC_LINK_CHECK_S, clock_speed=SPEED)
    await driver.connect()
    try:
        yield driver
    finally:
        await driver.close()
        sim_world.faults.clear()
        await assert_no_tasks_left()


async def wait_for(predicate: Any, timeout: float = 60.0, step: float = 0.005) -> None:
    """Wait until predicate() is true; AssertionError after `timeout` real seconds, a hang guard only (it bounds
    nothing: a busy machine may take long)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


@pytest.fixture
def until() -> Any:
    """The wait helper as a fixture (test modules cannot import conftest)."""
    return wait_for


@pytest.fixture
def no_tasks_left() -> Any:
    """The leaked-task check as a fixture."""
    return assert_no_tasks_left


@pytest.fixture(scope="session")
def clock_speed() -> float:
    """The simulated clock speed of these tests."""
    return SPEED


@pytest.fixture(scope="session")
def plc_server_thread() -> type[PlcServerThread]:
    """The server-in-a-thread runner, for modules that need their own server (test modules cannot import conftest)."""
    return PlcServerThread


@pytest.fixture(scope="session")
def new_world() -> Any:
    """Factory of fresh worlds on the fast clock."""
    return fresh_world
