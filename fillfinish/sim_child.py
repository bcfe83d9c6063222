"""The simulator as a child process (`python -m fillfinish sim`), as `fillfinish demo` and the benchmarks run it.

In the demo's own process the simulator's threads (the OPC UA server with its encryption, the pump and balance
emulators, the world) shared the controller's interpreter lock, so their work counted in the controller's time a vial
(about a third more on two cores); a real line's devices are other machines. The child speaks over the same ptys and
loopback OPC UA and shares the timeline file at `--speed max` (decision 0019). It runs in its own session, so a
Ctrl-C at the terminal reaches only the demo, whose safe stop still has the devices; the demo stops it afterwards
with SIGINT, and it stops by itself if the demo is killed (`--parent-pid`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fillfinish.errors import UserError

READY = "Ctrl-C stops the simulator."
"""The line `fillfinish sim` prints once it serves (after its site config is written)."""
START_GUARD_S = 120.0
"""Real seconds the simulator may take to start (a hang guard, not a measurement)."""
STOP_GUARD_S = 30.0
"""Real seconds the simulator may take to stop after SIGINT before it is killed."""


def _env() -> dict[str, str]:
    """The environment of the child: the folder this fillfinish (and sim) was imported from first on its path."""
    import fillfinish

    root = str(Path(fillfinish.__file__).resolve().parent.parent)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))


@contextmanager
def simulator_child(folder: Path, *, speed: str, database_url: str, faults: Path | None = None,
                    density_g_ml: float = 1.0) -> Iterator[Path]:
    """Start `fillfinish sim --speed SPEED` writing its site config into `folder`; yield the config's path once it
    serves; stop it (SIGINT, then kill after STOP_GUARD_S). UserError with the end of its output if it cannot start."""
    config, log = folder / "site.toml", folder / "sim.log"
    cmd = [sys.executable, "-m", "fillfinish", "sim", "--speed", speed, "--config-out", str(config.resolve()),
           "--db", database_url, "--density-g-ml", repr(float(density_g_ml)), "--parent-pid", str(os.getpid())]
    if faults is not None:
        cmd += ["--faults", str(Path(faults).resolve())]
    with log.open("w") as sink:  # a file, not a pipe: the simulator's output must never block it
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env(),
                                start_new_session=True)
    try:
        deadline = time.monotonic() + START_GUARD_S
        while READY not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = [line.removeprefix("error: ") for line in log.read_text(errors="replace").strip().splitlines()]
                raise UserError("the simulator did not start: " + (" / ".join(tail[-12:]) or f"exit {proc.poll()}"))
            time.sleep(0.02)
        yield config
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT (its Ctrl-C: it stops its devices), then kill if it does not end within STOP_GUARD_S."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_GUARD_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
