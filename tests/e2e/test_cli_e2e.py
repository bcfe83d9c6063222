"""The commands as a person runs them: `fillfinish demo`, `fillfinish sim` (Ctrl-C), `fillfinish record verify`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fillfinish.config import load_site_config

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FF = [sys.executable, "-m", "fillfinish"]


def _env() -> dict[str, str]:
    """The children's environment, read when they start (the session's fixtures set their folders by then)."""
    return {**os.environ, "COLUMNS": "200"}


def test_demo_at_speed_max_runs_a_whole_batch_within_its_hold_times_and_the_record_verifies(tmp_path: Path) -> None:
    """One whole demo batch (10 vials) on the shared timeline: a loaded machine cannot turn a stall into simulated
    time (a fixed speed is run end to end by tests/e2e/test_safety_signals.py at x100)."""
    db = f"sqlite:///{tmp_path / 'max.db'}"
    demo = subprocess.run([*FF, "demo", "--vials", "10", "--speed", "max", "--db", db], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, env=_env())
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "speed max" in demo.stderr and "Complete" in demo.stdout and "Traceback" not in demo.stderr
    assert "suitable for cell therapy grade" in demo.stdout
    verify = subprocess.run([*FF, "record", "verify", "--db", db], capture_output=True, text=True, timeout=60,
                            env=_env())
    assert verify.returncode == 0, verify.stdout + verify.stderr


def wait_ready(proc: subprocess.Popen[str]) -> str:
    """What `fillfinish sim` printed up to its ready line (printed once Ctrl-C is handled); fails if it ends first."""
    assert proc.stdout is not None
    shown: list[str] = []
    while not shown or "Ctrl-C stops the simulator." not in shown[-1]:
        shown.append(proc.stdout.readline())
        assert shown[-1], f"the simulator ended before it was ready: {''.join(shown)}"
    return "".join(shown)


def test_sim_writes_a_valid_site_config_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    proc = subprocess.Popen([*FF, "sim", "--speed", "10", "--config-out", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        wait_ready(proc)
        config = load_site_config(cfg)
        assert config.plc.endpoint.startswith("opc.tcp://127.0.0.1:")
        assert Path(config.dispenser.port).exists() and config.clock.speed == 10.0
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "simulator stopped" in out and "Traceback" not in err


def test_sim_at_speed_max_shares_its_timeline_with_a_controller_in_another_process(tmp_path: Path) -> None:
    import serial

    from fillfinish.clock import Clock

    cfg = tmp_path / "site.toml"
    proc = subprocess.Popen([*FF, "sim", "--speed", "max", "--config-out", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        shown = wait_ready(proc)
        config = load_site_config(cfg)
        assert config.clock.timeline == str(tmp_path / "site.toml.timeline")
        clock = Clock(config.clock.speed, config.clock.epoch, config.clock.timeline)
        before = clock.now()
        with serial.Serial(config.dispenser.port, 9600, timeout=5) as line:  # a status question over the pty
            line.write(b"/1Q\r")
            assert line.read_until(b"\x03\r\n").endswith(b"\x03\r\n")
        assert clock.now() > before  # the simulator's line time moved the timeline this process reads
        moved = clock.now()
        clock.device_sleep(0.5 / clock.speed)  # and this process's wait moves the simulator's time
        assert clock.now() == pytest.approx(moved + 0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "max (shared timeline" in shown and "simulator stopped" in out and "Traceback" not in err


def test_run_refuses_bad_input_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text("[clock]\nspeed = -1\n")
    res = subprocess.run([*FF, "run", "--config", str(bad), "--recipe", str(REPO / "recipes" / "fgf2.toml"),
                          "--lot", "L", "--vials", "10", "--operator", "op"], capture_output=True, text=True,
                         timeout=60, env=_env())
    assert res.returncode == 1
    assert "site.toml" in res.stderr and "speed" in res.stderr and "Traceback" not in res.stderr
    usage = subprocess.run([*FF, "run", "--vials", "ten"], capture_output=True, text=True, timeout=60, env=_env())
    assert usage.returncode == 2


def test_demo_refuses_a_speed_that_is_neither_a_number_nor_max(tmp_path: Path) -> None:
    demo = subprocess.run([*FF, "demo", "--speed", "fast"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=_env())
    assert demo.returncode == 2 and "'fast'; allowed: a number >= 0.001 or 'max'" in demo.stdout + demo.stderr
    sim = subprocess.run([*FF, "sim", "--speed", "fast", "--config-out", str(tmp_path / "s.toml")],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path, env=_env())
    assert sim.returncode == 2 and "'fast'; allowed: a number >= 0.001 or 'max'" in sim.stdout + sim.stderr


def test_demo_refuses_vials_outside_the_recipe_before_its_simulator_starts(tmp_path: Path) -> None:
    """A batch size the recipe does not allow is refused first: no simulator, no record, one line naming the limits."""
    db = tmp_path / "demo.db"
    demo = subprocess.run([*FF, "demo", "--vials", "3", "--db", f"sqlite:///{db}"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=_env())
    assert demo.returncode == 1, demo.stdout + demo.stderr
    assert "--vials 3 is outside the recipe's batch size; allowed: 10-2000 vials" in demo.stderr
    assert "simulator:" not in demo.stderr and "Traceback" not in demo.stdout + demo.stderr
    assert not db.exists()


def test_demo_names_a_fault_script_its_simulator_cannot_read(tmp_path: Path) -> None:
    """The demo's simulator runs as a child process; what stops it from starting reaches the person as one line
    naming the file and what is wrong (exit 1, no traceback), and no simulator is left running."""
    bad = tmp_path / "faults.toml"
    bad.write_text('[[fault]]\nat_s = 10\nkind = "nope"\n', encoding="utf-8")
    demo = subprocess.run([*FF, "demo", "--vials", "10", "--speed", "max", "--faults", str(bad), "--db",
                           f"sqlite:///{tmp_path / 'demo.db'}"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=_env())
    assert demo.returncode == 1, demo.stdout + demo.stderr
    assert "the simulator did not start" in demo.stderr and str(bad) in demo.stderr
    assert "Traceback" not in demo.stdout + demo.stderr
