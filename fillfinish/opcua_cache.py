"""A cached copy of asyncua's standard OPC UA address space, so an OPC UA server starts in a fraction of a second.

`asyncua.Server.init()` builds the standard address space (some 10,000 nodes) from generated Python code: about
2.3 s on a quiet 2-core machine, 6 s under load, for every server (the simulated PLC's and the controller's: a demo
starts two, the e2e tests dozens). asyncua can instead read the nodes lazily from a `shelve` file that an earlier
start wrote (`Server.init(shelf_file)`, made for slow devices). This module keeps one such file per asyncua and
Python version in the user's cache folder, writes it once under a lock (a second process that finds the lock taken
does not wait: it builds the space as before), publishes it only when complete, and uses it only when it belongs to
this user and nobody else may write it (a shelf is a pickle: whoever can write it could run code in the server).
Decision 0027.
"""

from __future__ import annotations

import fcntl
import os
import stat
import sys
from pathlib import Path

CACHE_ENV = "FILLFINISH_CACHE_DIR"
"""Environment variable naming the cache folder (default: $XDG_CACHE_HOME/fillfinish, else ~/.cache/fillfinish)."""
_SUFFIXES = ("", ".dat", ".dir", ".bak", ".db", ".pag")
"""The files a shelve may consist of, by dbm flavour (dbm.dumb: .dat .dir .bak; gdbm: the name itself; ...)."""


def cache_folder() -> Path:
    """The folder of fillfinish's caches."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fillfinish"


def shelf_path() -> Path:
    """Where the shelf of this asyncua and Python version lives (its name without a dbm suffix)."""
    from importlib.metadata import version

    tag = version("asyncua").replace(".", "_")  # no dots: a dbm suffix must not cut the name
    return cache_folder() / f"opcua-standard-space-asyncua{tag}-py{sys.version_info[0]}_{sys.version_info[1]}"


def ready_shelf() -> Path | None:
    """The path to pass to `Server.init` when a complete shelf of this version is there and safe to read, else None
    (the caller builds the space as before)."""
    path = shelf_path()
    marker = path if path.is_file() else path.with_suffix(".db")
    if not marker.is_file():
        return None
    files = [path.with_name(path.name + s) for s in _SUFFIXES if path.with_name(path.name + s).exists()]
    return path if all(_private(f) for f in [path.parent, *files]) else None


def _private(path: Path) -> bool:
    """True when `path` belongs to this user and no one else may write it."""
    try:
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


async def standard_space_shelf() -> Path | None:
    """A ready shelf, written first if there is none (once: about a second more than a plain start); None when the
    cache folder cannot be written or another process is writing it right now."""
    ready = ready_shelf()
    if ready is not None:
        return ready
    path = shelf_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another process writes it: build the space as before this once
        if ready_shelf() is None:
            await _write(path)
        return ready_shelf()
    except OSError:
        return None
    finally:
        os.close(lock)  # releases the lock


async def _write(path: Path) -> None:
    """Let asyncua build the space and write it to a shelf of its own name, then move the files into place and
    create the marker asyncua looks for last (a reader never sees half a shelf)."""
    from asyncua import Server

    build = path.with_name(f"{path.name}.build-{os.getpid()}")
    await Server().init(build)
    for suffix in _SUFFIXES:
        part = build.with_name(build.name + suffix)
        if part.exists():
            os.chmod(part, 0o600)  # the folder is private already; the files too, before they are published
            os.replace(part, path.with_name(path.name + suffix))
    if not path.exists() and not path.with_suffix(".db").exists():  # dbm.dumb: no file of the bare name
        path.touch(mode=0o600)
