"""End-to-end fixtures: one simulator per session (every byte over real ptys and loopback OPC UA), a fresh record
database and site config per test, and helpers to wait on the controller without real-time sleeps of simulated
durations."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from fillfinish.batch.controller import BatchController, TipLot
from fillfinish.config import SiteConfig, load_site_config
from fillfinish.recipes.loader import LoadedRecipe, load_recipe
from fillfinish.session import controller_session
from hal.transport.tasks import cancel_and_wait
from sim.runner import Simulator

REPO = Path(__file__).resolve().parents[2]
SPEED = 2000.0
"""The shared timeline's rate: simulated s per real s at most, as `--speed max` (fillfinish/cli_batch.py)."""


@pytest.fixture(scope="package")  # stopped after tests/e2e: its threads must not slow the later (real-time) tests
def simulator(tmp_path_factory: pytest.TempPathFactory, opcua_shelf: Any) -> Iterator[Simulator]:
    """The simulator on a shared timeline: simulated time moves only when the machine is waited on, so a stall of
    the loaded test process stalls simulated time too (no particle gap or late pump answer made of real time)."""
    timeline = tmp_path_factory.mktemp("timeline") / "timeline"
    sim = Simulator(SPEED, timeline=timeline, opcua_shelf=opcua_shelf).start()  # the pump gets a second to answer
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(autouse=True)
def _clean_world(simulator: Simulator) -> Iterator[None]:
    simulator.world.faults.clear()
    yield
    simulator.world.faults.clear()
    simulator.world.set_lamp(False)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'record.db'}"


@pytest.fixture
def site_path(simulator: Simulator, tmp_path: Path, db_url: str) -> Path:
    return simulator.write_site_config(tmp_path / "site.toml", db_url)


@pytest.fixture
def site(site_path: Path) -> SiteConfig:
    return load_site_config(site_path)


@pytest.fixture
def fgf2() -> LoadedRecipe:
    return load_recipe(REPO / "recipes" / "fgf2.toml")


@pytest.fixture
def tip_lot() -> TipLot:
    return TipLot("TL-TEST-1", "EO-CYCLE-7", (dt.date.today() + dt.timedelta(days=400)).isoformat())


async def cancel_leftover_tasks() -> None:
    """Cancel the tasks a failed test left running in its loop (a batch run still holding the pump's port), so the
    failure stays in that test instead of refusing the shared simulator's ports to every later one."""
    # only batch runs (start_batch marks them): the session's own PLC and server tasks end with the session
    left = [t for t in asyncio.all_tasks() if getattr(t, "controller", None) is not None and not t.done()]
    await cancel_and_wait(left)


@pytest.fixture(autouse=True)
async def _no_leftover_tasks() -> AsyncIterator[None]:
    yield
    await cancel_leftover_tasks()


@pytest.fixture
async def controller(site: SiteConfig, fgf2: LoadedRecipe) -> AsyncIterator[BatchController]:
    async with controller_session(site, fgf2) as c:
        yield c
        await cancel_leftover_tasks()  # before the session closes the devices under a still-running batch


