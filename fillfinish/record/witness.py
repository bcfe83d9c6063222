"""The ledger witness: the newest keyed ledger row of a line, kept in a small file beside the site key.

The database alone cannot show that its newest rows were cut off (a clean cut looks like an earlier, complete
record). After every commit the writer overwrites one fixed-size record in this file with the line's head
(line_seq, hash, MAC); `record verify` checks that the database still holds that row. The file lives outside the
database, next to the key, so someone who can only write the database cannot roll it back. It is written without
fsync: after an operating-system crash it may lag behind the database (never run ahead of it), which can only hide
a cut, never report a false one (decision 0012).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

RECORD_BYTES = 256


@dataclass(frozen=True)
class WitnessMark:
    """One line's witnessed head: the row (line_id, line_seq) must exist with this hash and MAC."""

    line_id: str
    line_seq: int
    hash: str
    mac: str
    path: Path


def database_identity(url: str) -> str:
    """16 hex digits naming a database (a SQLite file by its absolute path, a server database by its URL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not parsed.database.startswith("file:"):
        text = "sqlite:" + str(Path(parsed.database).resolve())
    else:
        text = parsed.set(password=None).render_as_string(hide_password=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def witness_path(key_path: Path, db_id: str, line_id: str) -> Path:
    """The witness file of one line of one database, beside the key file."""
    return key_path.parent / f"{key_path.stem}.witness-{db_id}-{line_id}"


class Witness:
    """Writer side: keeps an open descriptor and overwrites the record in place after each commit (one pwrite)."""

    def __init__(self, path: Path, line_id: str) -> None:
        """Open (create) the witness file of `line_id` at `path`."""
        self.path = path
        self.line_id = line_id
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._seq = 0

    def mark(self, line_seq: int, row_hash: str, mac: str) -> None:
        """Record the line's new head (ignored when older than what this writer already wrote)."""
        if line_seq <= self._seq:
            return
        text = f"{self.line_id} {line_seq} {row_hash} {mac}\n".encode("ascii")
        os.pwrite(self._fd, text.ljust(RECORD_BYTES, b" "), 0)
        self._seq = line_seq

    def close(self) -> None:
        """Close the descriptor."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_marks(key_path: Path, db_id: str) -> tuple[list[WitnessMark], list[str]]:
    """Every witness of database `db_id` beside `key_path`: (marks, problems with unreadable files)."""
    marks: list[WitnessMark] = []
    problems: list[str] = []
    if not key_path.parent.is_dir():
        return marks, problems
    for path in sorted(key_path.parent.glob(f"{key_path.stem}.witness-{db_id}-*")):
        try:
            parts = path.read_text(encoding="ascii").split()
            line_id, seq_text, row_hash, mac = parts[:4]
            marks.append(WitnessMark(line_id, int(seq_text), row_hash, mac, path))
        except (OSError, ValueError, UnicodeDecodeError):
            problems.append(f"witness file {path} is unreadable")
    return marks, problems
