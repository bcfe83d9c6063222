"""Safe when the controller is not (continued from test_safety_signals.py, whose helpers and simulator fixture it
uses; a file of its own so `--dist loadfile` can run it on the other worker): SIGKILL leaves the line to the PLC's
watchdog (lamp off within its time, checked over OPC UA on the PLC); a second controller of the same line is refused
however the database is spelled, and with another database by the PLC's line claim."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from fillfinish.record.store import RecordStore
from fillfinish.record.verify import verify
from sim.runner import Simulator

from e2e_support import kinds
from test_safety_signals import (  # noqa: F401 - simulator and _plc_guard_reset are this module's fixtures too
    _plc_guard_reset, at, fillfinish, finish, read_plc, recipe, simulator, start_run, wait_entries, wait_plc)

pytestmark = pytest.mark.slow


async def test_second_controllers_of_a_line_are_refused(simulator: Simulator, tmp_path: Path) -> None:
    """This test process is the live controller of line-1 (record lock held, line claimed on the PLC, running batch
    B-LIVE); a second `run` with the same database spelled differently, one with another database, and a `batch
    recover` are all refused naming it, and none of them reaches a device."""
    from fillfinish.config import load_site_config
    from fillfinish.lock import exclusive, note_batch
    from fillfinish.recipes.loader import load_recipe
    from fillfinish.session import controller_session

    db = f"sqlite:///{tmp_path / 'record.db'}"
    site = simulator.write_site_config(tmp_path / "site.toml", db)
    with exclusive(db, "fillfinish run", "line-1"):
        async with controller_session(load_site_config(site), load_recipe(recipe(tmp_path)), database_url=db) as c:
            note_batch("B-LIVE")
            await c.line.claim("B-LIVE")
            moves, switches = simulator.world.positioner.moves, simulator.world.lamp.switch_count
            # start_run seeds master data (argon2 hashing): off the loop, or the live controller's heartbeat stalls
            same_db = await asyncio.to_thread(lambda: finish(start_run(site, tmp_path, db="record.db")))
            other_db = await asyncio.to_thread(lambda: finish(start_run(site, tmp_path,
                                                                        db=f"sqlite:///{tmp_path / 'other.db'}")))
            recover = await asyncio.to_thread(fillfinish, tmp_path, "batch", "recover", "--config", str(site), "--db",
                                              "record.db")
            assert simulator.world.positioner.moves == moves and simulator.world.lamp.switch_count == switches
            assert simulator.plc.guard.owner == c.line.guard.token, "the live controller still holds the line"
    pid = f"pid {os.getpid()}"
    rc, _out, err = same_db
    assert rc == 1 and "in use by" in err and pid in err and "B-LIVE" in err, err
    rc, _out, err = other_db
    assert rc == 1 and "held by another controller" in err and pid in err and "B-LIVE" in err, err
    assert recover.returncode == 1 and "in use by" in recover.stderr, recover.stderr


@pytest.mark.parametrize("where", ["uv", "post_fill"])  # mid-dispense: tests/e2e/test_crash.py
def test_sigkill_plc_watchdog_makes_line_safe(simulator: Simulator, tmp_path: Path, where: str) -> None:
    db = f"sqlite:///{tmp_path / 'record.db'}"
    site = simulator.write_site_config(tmp_path / "site.toml", db)
    proc = start_run(site, tmp_path, vials=1)
    try:
        batch_id, _ = wait_entries(db, at(where), proc)
        proc.send_signal(signal.SIGKILL)  # no clean-up of any kind: only the PLC can make the line safe
        finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    names = ("UV.LampOn", "UV.LampCommand", "Line.WatchdogTripped", "Line.LastHeartbeat", "Line.AlarmTime",
             "Line.WatchdogTime", "Line.Alarm", "Line.Owner", "Door.Locked")
    v = wait_plc(simulator, lambda v: v["Line.WatchdogTripped"], *names)
    assert v["UV.LampOn"] is False and v["UV.LampCommand"] is False
    assert "heartbeat lost" in v["Line.Alarm"] and v["Line.Owner"] == ""
    late = v["Line.AlarmTime"] - v["Line.LastHeartbeat"]
    # never before the watchdog time; how soon after it is the PLC scan's real-time latency (bench/, not a test bound)
    assert v["Line.WatchdogTime"] < late, \
        f"lamp off {late:.0f} simulated s after the last heartbeat (watchdog {v['Line.WatchdogTime']:.0f} s)"
    recovered = fillfinish(tmp_path, "batch", "recover", "--config", str(site))
    assert recovered.returncode == 0, recovered.stderr
    with RecordStore(db, create=False) as store:
        entries = store.entries(batch_id)
        assert "heartbeat lost" in kinds(entries, "plc_alarm")[0].data["message"], "the next start records it"
        assert kinds(entries, "state")[-1].data["to"] == "Held"
        assert verify(store, batch_id).ok
    assert not read_plc(simulator, "Line.WatchdogTripped")["Line.WatchdogTripped"], "reset once recorded"
