"""The simulator's clock: simulated Unix time running `speed` times faster than the wall clock.

The controller has a twin (`fillfinish/clock.py`) computing the same formula from the same two numbers (`epoch`, `speed`),
which the site config carries in `[clock]`; so controller and simulator share one time base across processes
without importing each other (docs/decisions/0002-one-clock.md). At speed 1 this is the wall clock.
"""

from __future__ import annotations

import asyncio
import time


class SimClock:
    """Simulated time: now = epoch + (wall - epoch) x speed; waits last duration / speed real seconds."""

    def __init__(self, speed: float = 1.0, epoch: float | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be > 0, got {speed!r}")
        self.speed = float(speed)
        self.epoch = float(time.time() if epoch is None else epoch)

    def now(self) -> float:
        """Simulated Unix time in seconds."""
        return self.epoch + (time.time() - self.epoch) * self.speed

    def real_seconds(self, sim_seconds: float) -> float:
        """How long `sim_seconds` of simulated time last on the wall clock."""
        return max(0.0, sim_seconds) / self.speed

    def sleep(self, sim_seconds: float) -> None:
        """Block for `sim_seconds` of simulated time."""
        time.sleep(self.real_seconds(sim_seconds))

    async def asleep(self, sim_seconds: float) -> None:
        """Await `sim_seconds` of simulated time."""
        await asyncio.sleep(self.real_seconds(sim_seconds))
