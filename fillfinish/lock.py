"""One controller per batch record: an exclusive lock that run, resume, abort and recover hold while they work.

Without it a `batch recover` could write Held into a batch that a live controller is still filling, or two `run`s
could both find no unfinished batch and start two. The lock is an flock on a file named after the database URL, so
it is released by the kernel when the process dies (a SIGKILL leaves no stale lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class RecordBusy(RuntimeError):
    """Another fillfinish process holds this record."""


def lock_path(database_url: str) -> Path:
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"fillfinish-{digest}.lock"


@contextmanager
def exclusive(database_url: str, what: str) -> Iterator[None]:
    """Hold the record's lock for `what`, or raise RecordBusy naming the process that has it."""
    path = lock_path(database_url)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RecordBusy(f"the batch record is in use by {holder}; wait for it to end (or stop it) first") \
                from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({what})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
