"""Kill the controller process (SIGKILL) mid-fill, restart: the record is intact, every vial the pump dispensed into
is in it, the vial in flight is uncertain, the monitoring gap is an exception, and the batch comes back Held until a
person resumes (or aborts) it. The controller runs as a real `fillfinish run` process against the test's simulator."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fillfinish.record.store import RecordStore
from fillfinish.record.verify import verify
from hal.transport.wirelog import WireLog
from sim.runner import Simulator

from e2e_support import kinds
from masterdata_fixture import feed, seed_master_data

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FILLFINISH = [sys.executable, "-m", "fillfinish"]


def slow_recipe(tmp_path: Path) -> Path:
    """FGF-2 with a slow 900 uL dispense, so the kill lands while a dispense is under way."""
    text = (REPO / "recipes" / "fgf2.toml").read_text()
    for old, new in (("fill_volume_ul = 100.0", "fill_volume_ul = 900.0"), ("dispense_speed_ul_s = 80.0",
                     "dispense_speed_ul_s = 5.0"), ("vial_count_min = 10", "vial_count_min = 1"),
                     # the people now sign with passwords between the kill and the resume: more room at speed x400
                     ("fill_duration_max_s = 14400.0", "fill_duration_max_s = 86400.0")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "fgf2-slow.toml"
    path.write_text(text)
    return path


def fillfinish(*args: str, timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: A002
    return subprocess.run([*FILLFINISH, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, input=input,
                          env={**os.environ, "COLUMNS": "200"})


def wait_entries(db: str, predicate, timeout: float = 60.0, proc=None):  # type: ignore[no-untyped-def]
    """Poll the record until `predicate(entries)` holds for a batch; fail at once with the controller's output if
    `proc` exits first, and with the last entries on the hang guard."""
    deadline = time.monotonic() + timeout
    last: list = []  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"controller exited {proc.returncode} first: {out[-2000:]} {err[-2000:]}")
        try:
            store = RecordStore(db, create=False)
        except Exception:  # the database is not there yet
            time.sleep(0.02)
            continue
        try:
            for header in store.batches():
                entries = last = store.entries(header.batch_id)
                if predicate(entries):
                    return header.batch_id, entries
        finally:
            store.close()
        time.sleep(0.005)
    raise AssertionError(f"the controller did not get there in time; last entries: "
                         f"{[(e.kind, e.data) for e in last if e.kind != 'measurement'][-8:]}")


def watchdog_trip(simulator: Simulator) -> Any:
    """Wait on the machine (moving the shared timeline: nobody else moves it once the controller is dead) until the
    PLC's watchdog has tripped; returns the PLC's line guard. The 30 s real bound is only a hang guard."""
    deadline = time.monotonic() + 30
    while not simulator.plc.guard.tripped and time.monotonic() < deadline:
        simulator.clock.sleep(10.0)
        time.sleep(0.01)  # the PLC's scan runs in its own thread
    return simulator.plc.guard


def test_sigkill_mid_dispense_then_recover_and_resume(simulator: Simulator, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'record.db'}"
    site = simulator.write_site_config(tmp_path / "site.toml", db)
    recipe = slow_recipe(tmp_path)
    expiry = (dt.date.today() + dt.timedelta(days=300)).isoformat()
    seeded = seed_master_data(db, site, [recipe], "op.anna", tip=("TL-9", "EO-9", expiry),
                              extra_people={"sup.bob": "supervisor"})
    run_args = ["run", "--config", str(site), "--recipe", str(recipe), "--lot", "L-CRASH", "--vials", "6",
                "--operator", "op.anna", "--tip-lot", "TL-9", "--tip-cycle", "EO-9", "--tip-expiry", expiry,
                "--no-progress", "--wire-log", str(tmp_path / "wire.jsonl"), *seeded.run_args]
    proc = subprocess.Popen([*FILLFINISH, *run_args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True)
    feed(proc, seeded.stdin_text)
    try:
        def in_flight(entries):  # type: ignore[no-untyped-def]
            """The power cut lands while the pump still moves a vial's dispense (3, 4 or 5) whose intent has no
            outcome: checked on the emulator right before the kill, because on the shared timeline a 180 s
            dispense can end in a tenth of a real second, sooner than the record is polled again."""
            for vial in (3, 4, 5):
                if (kinds(entries, "intent", action="dispense", vial=vial)
                        and not kinds(entries, "outcome", action="dispense", vial=vial) and simulator.pump.busy()):
                    proc.send_signal(signal.SIGKILL)  # power cut: no clean-up of any kind
                    return True
            return False

        batch_id, _ = wait_entries(db, in_flight, proc=proc)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # the PLC's watchdog, not the dead controller, makes the line safe: lamp off within its time (PLC clock)
    guard = watchdog_trip(simulator)
    assert guard.tripped and not simulator.world.lamp.commanded, "PLC watchdog tripped, lamp off"
    assert guard.watchdog_s < guard.alarm_time - guard.last_heartbeat  # never before its time (latency: bench/)

    store = RecordStore(db, create=False)
    try:
        assert verify(store).ok, "the record is intact after the kill"
    finally:
        store.close()
    wire = WireLog.load(tmp_path / "wire.jsonl")  # every exchange up to the kill, on the shared clock
    assert {e.device for e in wire} == {"pump", "balance", "plc"}
    assert any(bytes.fromhex(e.data).startswith(b"/1D") for e in wire if e.device == "pump" and e.dir == "tx")

    # a new batch is refused while this one has not ended
    refused = fillfinish(*run_args, input=seeded.stdin_text)
    assert refused.returncode == 1 and "did not end" in refused.stderr

    store = RecordStore(db, create=False)
    try:  # the vial whose dispense intent has no outcome: the one the pump was moving at the kill
        entries = store.entries(batch_id)
        done = {e.data["vial"] for e in kinds(entries, "outcome", action="dispense")}
        flying = [e.data["vial"] for e in kinds(entries, "intent", action="dispense") if e.data["vial"] not in done]
    finally:
        store.close()
    assert len(flying) == 1, f"one dispense in flight at the kill, found {flying}"
    v = flying[0]
    recovered = fillfinish("batch", "recover", "--config", str(site))
    assert recovered.returncode == 0, recovered.stderr
    assert f"vial {v} is UNCERTAIN" in recovered.stdout
    store = RecordStore(db, create=False)
    try:
        entries = store.entries(batch_id)
        assert kinds(entries, "recovery")[0].data["uncertain_vial"] == v
        assert "heartbeat lost" in kinds(entries, "plc_alarm")[0].data["message"], "the watchdog trip is recorded"
        assert kinds(entries, "exception", kind="monitoring_gap")
        assert kinds(entries, "vial", vial=v)[0].data["status"] == "uncertain"
        assert kinds(entries, "state")[-1].data["to"] == "Held", "back Held, awaiting a person"
        assert verify(store, batch_id).ok
    finally:
        store.close()
    assert not simulator.world.lamp_on()
    again = fillfinish("batch", "recover", "--config", str(site))
    assert again.returncode == 0 and "already recovered" in again.stdout

    resumed = fillfinish("batch", "resume", batch_id, "--config", str(site), "--operator", "sup.bob",
                         "--reason", "line inspected after power cut", "--no-progress",
                         "--password-stdin", input=seeded.password_line("sup.bob"))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "not suitable for cell therapy grade" in resumed.stdout

    store = RecordStore(db, create=False)
    try:
        entries = store.entries(batch_id)
        assert verify(store, batch_id).ok
        status = {e.data["vial"]: e.data["status"] for e in kinds(entries, "vial")}
        assert status == {n: "uncertain" if n == v else "accepted" for n in range(1, 7)}
        # every vial the pump dispensed into is in the record, with its dispense intent written before
        dispensed_into = {e.position for e in simulator.world.dispensed if e.position}
        recorded = {e.data["vial"] for e in kinds(entries, "intent", action="dispense")}
        batch_positions = set(range(1, 7))
        assert dispensed_into & batch_positions <= recorded
        assert kinds(entries, "disposition")[-1].data["suitable"] is False
        assert [e.data["to"] for e in kinds(entries, "state")][-4:] == ["Unholding", "Execute", "Completing",
                                                                         "Complete"]
        assert kinds(entries, "operator", command="Unhold")[0].actor == "sup.bob"
    finally:
        store.close()


def test_sigkill_with_lamp_on_then_recover_switches_it_off_and_abort(simulator: Simulator, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'record.db'}"
    site = simulator.write_site_config(tmp_path / "site.toml", db)
    expiry = (dt.date.today() + dt.timedelta(days=300)).isoformat()
    seeded = seed_master_data(db, site, [REPO / "recipes" / "fgf2.toml"], "op.anna", tip=("TL-9", "EO-9", expiry),
                              extra_people={"sup.bob": "supervisor"})
    proc = subprocess.Popen(
        [*FILLFINISH, "run", "--config", str(site), "--recipe", str(REPO / "recipes" / "fgf2.toml"), "--lot", "L-UV",
         "--vials", "10", "--operator", "op.anna", "--tip-lot", "TL-9", "--tip-cycle", "EO-9", "--tip-expiry", expiry,
         "--no-progress", *seeded.run_args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.PIPE, text=True)
    feed(proc, seeded.stdin_text)
    try:
        batch_id, _ = wait_entries(db, lambda entries: kinds(entries, "outcome", action="lamp_on"), proc=proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    assert watchdog_trip(simulator).tripped, "the PLC's watchdog ends the dead controller's claim"

    recovered = fillfinish("batch", "recover", "--config", str(site), batch_id)
    assert recovered.returncode == 0, recovered.stderr
    assert "no vial was in flight" in recovered.stdout
    assert not simulator.world.lamp.commanded, "recovery makes the line safe: lamp off"

    aborted = fillfinish("batch", "abort", batch_id, "--config", str(site), "--operator", "sup.bob",
                         "--reason", "UV cycle cut by a power failure",
                         "--password-stdin", input=seeded.password_line("sup.bob"))
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    store = RecordStore(db, create=False)
    try:
        entries = store.entries(batch_id)
        assert verify(store, batch_id).ok
        assert kinds(entries, "safe_state", action="recovery")[0].data["lamp_off"] is True
        assert kinds(entries, "state")[-1].data["to"] == "Aborted"
        assert kinds(entries, "disposition")[-1].data["suitable"] is False
    finally:
        store.close()
