"""The simulator in a process of its own (`fillfinish sim`), for benchmarks of the controller's own path.

In one process the simulator's threads (OPC UA server with its encryption, pump and balance emulators, world model)
share the controller's interpreter lock, so their CPU counts as the controller's real time per vial; a real line's
devices are other machines. Here the simulator runs as `fillfinish sim` (the same code, speaking over the same ptys
and loopback OPC UA), sharing the timeline file at --speed max, as a user would run it beside `fillfinish run`.
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

from bench.common import REPO
from fillfinish.config import SiteConfig, load_site_config

READY = "Ctrl-C stops the simulator."
"""The line `fillfinish sim` prints once it serves (after its site config is written)."""
START_GUARD_S = 120.0
"""Real seconds the simulator may take to start (a hang guard, not a measurement)."""


@contextmanager
def simulator_process(folder: Path, speed: str, database_url: str) -> Iterator[SiteConfig]:
    """Start `fillfinish sim --speed SPEED` with its site config in `folder`; yield that config; stop it (Ctrl-C)."""
    config, log = folder / "site.toml", folder / "sim.log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with log.open("w") as sink:  # a file, not a pipe: the simulator's output must never block it
        proc = subprocess.Popen([sys.executable, "-m", "fillfinish", "sim", "--speed", speed, "--config-out",
                                 str(config), "--db", database_url], stdout=sink, stderr=subprocess.STDOUT,
                                text=True, env=env, cwd=folder)
    try:
        deadline = time.monotonic() + START_GUARD_S
        while READY not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the simulator did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield load_site_config(config)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
