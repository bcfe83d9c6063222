"""Safe when the controller is not: SIGTERM/SIGINT leave the line safe and the batch Held with the cause recorded;
SIGKILL and a second controller of the line: tests/e2e/test_safety_kill.py (its own file, so two workers share the
slow runs). Real `fillfinish` processes against the module's simulator; every wait is on the record or the PLC.
The helpers here are shared with test_safety_kill.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client

from fillfinish.record.store import RecordStore
from fillfinish.record.verify import verify
from sim.runner import Simulator

from masterdata_fixture import feed, seed_master_data
from e2e_support import kinds

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FILLFINISH = [sys.executable, "-m", "fillfinish"]
def env() -> dict[str, str]:
    """The child's environment as of now (the per-test site key in $FILLFINISH_SITE_KEY included)."""
    return {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)}


SPEED = 100.0  # a fixed speed, not the timeline: a killed controller's PLC watchdog must trip by itself (x100: no gap)


@pytest.fixture(scope="module")
def simulator() -> Any:
    """This module's own simulator (its PLC's watchdog: 3 real seconds)."""
    sim = Simulator(SPEED, secure=False).start()  # the tests read and write its PLC directly (security: test_sim_secure_default)
    try:
        yield sim
    finally:
        sim.stop()


def recipe(tmp_path: Path) -> Path:
    """FGF-2 for a few vials with a slow 900 uL dispense (a kill lands mid-dispense), short UV steps and a short
    post-fill window."""
    text = (REPO / "recipes" / "fgf2.toml").read_text()
    for old, new in (("fill_volume_ul = 100.0", "fill_volume_ul = 900.0"), ("dispense_speed_ul_s = 80.0",
                     "dispense_speed_ul_s = 5.0"), ("vial_count_min = 10", "vial_count_min = 1"),
                     ("target_dose_mj_cm2 = 300.0", "target_dose_mj_cm2 = 150.0"),
                     ("uv_target_dose_mj_cm2 = 200.0", "uv_target_dose_mj_cm2 = 40.0"),
                     ("post_fill_monitoring_s = 600.0", "post_fill_monitoring_s = 120.0"),
                     ("prime_volume_ul = 500.0", "prime_volume_ul = 0.0")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "fgf2-safety.toml"
    path.write_text(text)
    return path


def start_run(site: Path, tmp_path: Path, vials: int = 2, db: str | None = None) -> subprocess.Popen[str]:
    """`fillfinish run` in a child process, with the master data a start needs seeded into its record first."""
    from fillfinish.config import load_site_config

    expiry = (dt.date.today() + dt.timedelta(days=300)).isoformat()
    path = recipe(tmp_path)
    url = db or load_site_config(site).database.url
    if "://" not in url:  # a bare file name, relative to the child's working folder
        url = f"sqlite:///{tmp_path / url}"
    seeded = seed_master_data(url, site, [path], "op.anna", tip=("TL-9", "EO-9", expiry),
                              extra_people={"sup.bob": "supervisor"})
    SEEDED[str(tmp_path)] = seeded
    args = ["run", "--config", str(site), "--recipe", str(path), "--lot", "L-SAFE", "--vials", str(vials),
            "--operator", "op.anna", "--tip-lot", "TL-9", "--tip-cycle", "EO-9", "--tip-expiry", expiry,
            "--no-progress", *(["--db", db] if db else []), *seeded.run_args]
    proc = subprocess.Popen([*FILLFINISH, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True, env=env())
    feed(proc, seeded.stdin_text)
    return proc


SEEDED: dict[str, Any] = {}  # tmp_path -> the Seeded master data of the run started there (passwords for resume)


def fillfinish(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FILLFINISH, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env())


def wait_entries(db: str, predicate: Any, proc: subprocess.Popen[str], timeout: float = 90.0) -> tuple[str, list[Any]]:
    """Poll the record until `predicate(entries)` holds for a batch; fail at once if the controller exits first."""
    deadline = time.monotonic() + timeout
    last: list[Any] = []
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"controller exited {proc.returncode}: {out[-3000:]} {err[-2000:]}")
        try:
            store = RecordStore(db, create=False)
        except Exception:  # not created yet
            time.sleep(0.02)
            continue
        try:
            for header in store.batches():
                last = store.entries(header.batch_id)
                if predicate(last):
                    return header.batch_id, last
        finally:
            store.close()
        time.sleep(0.01)
    raise AssertionError(f"the controller did not get there in time; last entries: "
                         f"{[(e.kind, e.data) for e in last if e.kind != 'measurement'][-8:]}")


def at(where: str) -> Any:
    """Record predicate: the batch is in the UV cycle with the lamp on, mid-dispense, or in post-fill monitoring."""
    if where == "uv":
        return lambda es: kinds(es, "outcome", action="lamp_on") and not kinds(es, "phase", phase="uv_cycle",
                                                                                event="done")
    if where == "fill":
        return lambda es: kinds(es, "intent", action="dispense", vial=1) and not kinds(es, "outcome",
                                                                                       action="dispense", vial=1)
    return lambda es: kinds(es, "post_fill_monitoring", event="start")


async def _read_plc(endpoint: str, names: list[str]) -> dict[str, Any]:
    async with Client(endpoint, timeout=5) as client:
        nodes = [client.get_node(f"ns=2;s={n}") for n in names]
        return dict(zip(names, await client.read_values(nodes)))


def read_plc(sim: Simulator, *names: str) -> dict[str, Any]:
    """Values of PLC variables read over OPC UA (browse paths under ns=2, e.g. UV.LampOn)."""
    return asyncio.run(_read_plc(sim.plc.endpoint, list(names)))


def wait_plc(sim: Simulator, predicate: Any, *names: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = read_plc(sim, *names)
        if predicate(values):
            return values
        time.sleep(0.05)
    raise AssertionError(f"PLC never satisfied the condition: {values}")


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """The child's exit code and output; if it has not ended within the hang guard, kill it and fail with its output
    (a signalled controller that runs on must show why)."""
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"the controller did not end within 60 s; its output: {out[-2000:]} {err[-4000:]}")
    return proc.returncode, out, err


@pytest.fixture(autouse=True)
def _plc_guard_reset(simulator: Simulator) -> None:
    g = simulator.plc.guard
    g.tripped, g.alarm, g._lamp_off_at = False, "", None
    simulator.world.set_door_lock(True)


@pytest.mark.parametrize(("sig", "where"), [(signal.SIGTERM, "uv"), (signal.SIGINT, "fill"),
                                           (signal.SIGTERM, "post_fill")])
def test_signal_during_uv_fill_post_fill_leaves_batch_held(simulator: Simulator, tmp_path: Path, sig: int,
                                                            where: str) -> None:
    db = f"sqlite:///{tmp_path / 'record.db'}"
    site = simulator.write_site_config(tmp_path / "site.toml", db)
    proc = start_run(site, tmp_path, vials=1)
    try:
        batch_id, _ = wait_entries(db, at(where), proc)
        proc.send_signal(sig)
        rc, _out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert rc == 128 + sig, err
    assert read_plc(simulator, "UV.LampOn")["UV.LampOn"] is False
    with RecordStore(db, create=False) as store:
        entries = store.entries(batch_id)
        assert verify(store, batch_id).ok
        assert kinds(entries, "shutdown")
        assert kinds(entries, "state")[-1].data["to"] == "Held"
        if where == "fill":
            assert kinds(entries, "vial", vial=1)[0].data["status"] in ("rejected", "uncertain")
    again = fillfinish(tmp_path, "batch", "recover", "--config", str(site))
    assert again.returncode == 0 and "already recovered" in again.stdout, again.stdout + again.stderr


def test_signal_during_a_resumed_fill_leaves_the_batch_held_again(simulator: Simulator, tmp_path: Path) -> None:
    """`batch resume` handles SIGTERM like `run`: the resumed fill is stopped safe, the batch Held, exit 143."""
    db = f"sqlite:///{tmp_path / 'record.db'}"
    site = simulator.write_site_config(tmp_path / "site.toml", db)
    proc = start_run(site, tmp_path, vials=2)
    try:
        batch_id, _ = wait_entries(db, at("fill"), proc)
        proc.send_signal(signal.SIGTERM)
        rc, _out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert rc == 128 + signal.SIGTERM, err
    resume = subprocess.Popen([*FILLFINISH, "batch", "resume", batch_id, "--config", str(site), "--operator",
                               "sup.bob", "--reason", "vial 1 inspected", "--no-progress", "--password-stdin"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.PIPE,
                              text=True, env=env())
    feed(resume, SEEDED[str(tmp_path)].password_line("sup.bob"))
    try:
        wait_entries(db, lambda es: kinds(es, "intent", action="dispense", vial=2) and not kinds(
            es, "outcome", action="dispense", vial=2), resume)
        resume.send_signal(signal.SIGTERM)
        rc, _out, err = finish(resume)
    finally:
        if resume.poll() is None:
            resume.kill()
    assert rc == 128 + signal.SIGTERM and "Held" in err, err
    assert read_plc(simulator, "UV.LampOn")["UV.LampOn"] is False
    with RecordStore(db, create=False) as store:
        entries = store.entries(batch_id)
        assert verify(store, batch_id).ok
        assert len(kinds(entries, "shutdown")) == 2
        assert kinds(entries, "state")[-1].data["to"] == "Held"
        assert kinds(entries, "vial", vial=2)[0].data["status"] in ("rejected", "uncertain")
