"""`fillfinish line status`: every PLC tag, who holds the line, the pump's status and the balance's reading; it
claims nothing and moves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fillfinish.config import SiteConfig
from fillfinish.recipes.loader import LoadedRecipe
from fillfinish.session import controller_session
from hal.plc.signals import readable_signals
from sim.runner import Simulator

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def status(site_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fillfinish", "line", "status", "--config", str(site_path), *extra],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})


async def test_line_status_free_and_held(site_path: Path, site: SiteConfig, fgf2: LoadedRecipe,
                                         simulator: Simulator) -> None:
    moves = simulator.world.positioner.moves
    free = status(site_path, "--json")
    assert free.returncode == 0, free.stderr
    data = json.loads(free.stdout)
    assert set(data["plc"]["tags"]) == set(readable_signals()) and data["held_by"] is None
    assert data["pump"]["ready"] is True and "firmware" in data["pump"]
    assert data["balance"]["unit"] == "g"
    assert simulator.world.positioner.moves == moves and not simulator.plc.guard.owner, "nothing moved or claimed"
    async with controller_session(site, fgf2):  # a controller holds the line (and its serial ports)
        import asyncio

        held = await asyncio.to_thread(status, site_path)
    assert held.returncode == 0, held.stderr
    assert "held by line line-1" in held.stdout and "not queried" in held.stdout
