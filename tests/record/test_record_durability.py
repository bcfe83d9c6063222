"""Durability: a writer process SIGKILLed mid-append leaves a record that verifies and holds a prefix of its entries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fillfinish

from fillfinish.record import RecordStore
from record_helpers import StepClock, new_batch

CHILD = """
import sys
from fillfinish.record import RecordStore
store = RecordStore(sys.argv[1])
for i in range(int(sys.argv[3]), 1_000_000):
    entry = store.append(sys.argv[2], "vial", {"vial": i + 1, "status": "accepted", "reason": "x" * 500, "net_g": 0.5}, "child")
    print(entry.seq, flush=True)
"""


def run_and_kill(url: str, batch: str, have: int, after: int) -> int:
    """Start a child appending to `batch` (which holds `have` entries), SIGKILL it once it reported seq `after`;
    return the last reported seq."""
    root = str(Path(fillfinish.__file__).resolve().parents[1])  # works installed or from the source tree
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, batch, str(have)], stdout=subprocess.PIPE, text=True,
                             env=env)
    assert child.stdout is not None
    last = 0
    deadline = time.monotonic() + 30
    try:
        while last < after:
            line = child.stdout.readline()
            assert line, f"child ended early with code {child.wait()}"
            last = int(line)
            assert time.monotonic() < deadline, "child too slow"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return last


@pytest.mark.slow
def test_sigkilled_writer_leaves_a_verifiable_prefix(db_url: str) -> None:
    """Twice: kill the writer mid-stream; each time the record verifies, has every reported entry, none torn."""
    with RecordStore(db_url, now=StepClock()) as store:
        batch = new_batch(store)
    reported = 0
    for after in (25, 60):
        reported = run_and_kill(db_url, batch, reported, reported + after)
        with RecordStore(db_url) as store:
            report = store.verify()
            assert report.ok, report.lines()
            entries = store.entries(batch)
            assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
            assert len(entries) >= reported
            assert all(e.data["vial"] == e.seq and len(e.data["reason"]) == 500 for e in entries)
            reported = len(entries)
    with RecordStore(db_url) as store:
        assert store.append(batch, "exception", {"message": "after the crash"}, "controller").seq == reported + 1
        assert store.verify().ok
