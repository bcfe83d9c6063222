"""A deterministic clock for record tests: each call returns the previous time plus `step`."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class StepClock:
    """Each call returns the previous time plus `step` (thread-safe); `advance` jumps ahead (password ageing)."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(milliseconds=250)) -> None:
        """Start at `start` (default 2026-11-25 09:30 UTC)."""
        self._t = start or datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """The next time."""
        with self._lock:
            self._t += self._step
            return self._t

    def advance(self, delta: timedelta) -> None:
        """Jump ahead by `delta`."""
        with self._lock:
            self._t += delta
