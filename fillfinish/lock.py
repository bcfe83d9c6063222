"""One controller per line: an exclusive lock that run, demo, resume, abort and recover hold while they work.

Without it a `batch recover` could write Held into a batch that a live controller is still filling, or two `run`s
could both find no unfinished batch and start two. The lock is an flock on a file named after the line id and the
database's identity (the resolved absolute SQLite file, or the PostgreSQL server + port + database), never the URL
text: `--db race.db` and `--db sqlite:////abs/race.db` are the same lock, while different lines may share one
database. The kernel releases an flock when the process dies (a SIGKILL leaves no stale lock). The PLC's line claim
(hal/plc/guard.py) covers controllers of one line on different databases.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

DEFAULT_LINE = "line-1"
_held: dict[int, str] = {}  # fd -> what, for every lock this process holds (note_batch updates them)


class RecordBusy(RuntimeError):
    """Another fillfinish process holds this line on this record."""


def database_identity(database_url: str) -> str:
    """What names one database whatever the URL spelling: sqlite:<resolved absolute file> or
    postgresql://host:port/database (a local host spelled localhost, 127.0.0.1, ::1 or a socket is one host)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(database_url)
    except ArgumentError:
        return f"url:{database_url}"
    backend = url.get_backend_name()
    if backend == "sqlite":
        db = url.database or ""
        if db in ("", ":memory:") or db.startswith("file::memory:"):
            return f"sqlite-memory:{os.getpid()}"
        path = db[5:].split("?", 1)[0] if db.startswith("file:") else db
        return f"sqlite:{os.path.realpath(os.path.expanduser(path))}"
    host = (url.host or str(url.query.get("host", "") or "") or "localhost").lower()
    if host in ("127.0.0.1", "::1", "[::1]", "localhost") or host.startswith("/"):
        host = "localhost"
    return f"{backend}://{host}:{url.port or 5432}/{url.database or ''}"


def lock_path(database_url: str, line_id: str = DEFAULT_LINE) -> Path:
    """The lock file of `line_id` on the database named by `database_url` (any spelling)."""
    key = f"{line_id}\n{database_identity(database_url)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"fillfinish-{digest}.lock"


def _holder_text(what: str, line_id: str, batch: str | None) -> str:
    """Who holds a lock, as a refused process is told: host, pid, command, line and batch."""
    return (f"host {socket.gethostname()}, pid {os.getpid()}, {what}, line {line_id}"
            + (f", batch {batch}" if batch else ""))


@contextmanager
def exclusive(database_url: str, what: str, line_id: str = DEFAULT_LINE) -> Iterator[None]:
    """Hold the line's lock on this record for `what`, or raise RecordBusy naming the process that has it."""
    path = lock_path(database_url, line_id)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 300, 0).decode(errors="replace").strip() or "another process"
            raise RecordBusy(f"line {line_id} on this batch record is in use by {holder}; wait for it to end (or "
                             "stop it) first; nothing was sent to the devices") from None
        _write(fd, _holder_text(what, line_id, None))
        _held[fd] = f"{what}\n{line_id}"
        yield
    finally:
        _held.pop(fd, None)
        os.close(fd)  # closing the descriptor releases the flock


def note_batch(batch_id: str) -> None:
    """Name the batch this process now runs in every lock it holds (shown to a refused second process)."""
    for fd, key in list(_held.items()):
        what, line_id = key.split("\n", 1)
        _write(fd, _holder_text(what, line_id, batch_id))


def _write(fd: int, text: str) -> None:
    """Replace the lock file's holder text."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)
