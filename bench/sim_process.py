"""The simulator in a process of its own, for benchmarks of the controller's own path: `fillfinish sim` started as
`fillfinish demo` starts it (fillfinish/sim_child.py), with its site config loaded.

In one process the simulator's threads (OPC UA server with its encryption, pump and balance emulators, world model)
share the controller's interpreter lock, so their CPU counts as the controller's real time per vial; a real line's
devices are other machines.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fillfinish.config import SiteConfig, load_site_config
from fillfinish.sim_child import simulator_child


@contextmanager
def simulator_process(folder: Path, speed: str, database_url: str) -> Iterator[SiteConfig]:
    """Start `fillfinish sim --speed SPEED` with its site config in `folder`; yield that config; stop it (Ctrl-C)."""
    with simulator_child(folder, speed=speed, database_url=database_url) as config:
        yield load_site_config(config)
