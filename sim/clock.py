"""The simulator's clock: simulated Unix time running `speed` times faster than the wall clock.

The controller has a twin (`fillfinish/clock.py`) computing the same formula from the same two numbers (`epoch`, `speed`),
which the site config carries in `[clock]`; so controller and simulator share one time base across processes
without importing each other (docs/decisions/0002-one-clock.md). At speed 1 this is the wall clock.
"""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import struct
import threading
import time
from pathlib import Path


class SimClock:
    """Simulated time: now = epoch + (wall - epoch) x speed; waits last duration / speed real seconds.

    With `timeline` (a file written by the simulator for `--speed max`), time is the Timeline's instead: it stands
    still while the software works and a wait moves it forward (at most `speed` = the timeline's rate on average).
    """

    def __init__(self, speed: float = 1.0, epoch: float | None = None, timeline: str | Path | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be > 0, got {speed!r}")
        self.timeline = Timeline(timeline) if timeline is not None else None
        self.speed = float(self.timeline.rate if self.timeline is not None else speed)
        self.epoch = float(time.time() if epoch is None else epoch)

    def now(self) -> float:
        """Simulated Unix time in seconds."""
        if self.timeline is not None:
            return self.timeline.now()
        return self.epoch + (time.time() - self.epoch) * self.speed

    def real_seconds(self, sim_seconds: float) -> float:
        """How long `sim_seconds` of simulated time last on the wall clock (at most, on a timeline)."""
        return max(0.0, sim_seconds) / self.speed

    def sleep(self, sim_seconds: float) -> None:
        """Block for `sim_seconds` of simulated time (on a timeline: a wait on the machine, which moves time)."""
        if self.timeline is not None:
            self.timeline.advance(max(0.0, sim_seconds))
        else:
            time.sleep(self.real_seconds(sim_seconds))

    async def asleep(self, sim_seconds: float) -> None:
        """Await `sim_seconds` of simulated time (on a timeline: a wait on the machine, which moves time)."""
        if self.timeline is not None:
            await self.timeline.aadvance(max(0.0, sim_seconds))
        else:
            await asyncio.sleep(self.real_seconds(sim_seconds))

    async def await_passing(self, sim_seconds: float) -> None:
        """Await `sim_seconds` of simulated time without moving it (background watchers on a timeline)."""
        if self.timeline is None:
            await asyncio.sleep(self.real_seconds(sim_seconds))
            return
        until = self.timeline.now() + sim_seconds
        while (left := until - self.timeline.now()) > 0:
            await asyncio.sleep(min(0.02, max(0.0005, left / self.speed)))

    def device_sleep(self, real_seconds: float) -> None:
        """A driver's pause of `real_seconds` (drivers divide device time by `speed`): simulated time on a timeline."""
        if self.timeline is not None:
            self.timeline.advance(real_seconds * self.speed)
        else:
            time.sleep(real_seconds)

    async def device_asleep(self, real_seconds: float) -> None:
        """`device_sleep` for the event loop."""
        if self.timeline is not None:
            await self.asleep(real_seconds * self.speed)
        else:
            await asyncio.sleep(real_seconds)


class Timeline:
    """Simulated time for `--speed max`, shared through a small file (so two processes can share it, like [clock]).

    It stands still while the software works and jumps forward only when a wait on the machine asks for it
    (`advance`), at most `rate` simulated seconds per real second on average with bursts of up to `burst` seconds:
    the software's own real cost adds no simulated time, and the real-time pipelines that carry the machine's
    signals (OPC UA publishing, notifications) keep up with the jumps. File layout: seqlock counter, simulated now,
    real time of the last jump, credit (simulated s that may be jumped at once), rate, burst.
    """

    FORMAT = "<Qddddd"
    SIZE = struct.calcsize(FORMAT)

    def __init__(self, path: str | Path, *, create: bool = False, start: float | None = None,
                 rate: float = 2000.0, burst: float = 30.0) -> None:
        """Open the timeline file at `path` (`create`: make it, starting at `start` Unix s, else now)."""
        self.path = str(path)
        self._fd = os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
        if create:
            os.ftruncate(self._fd, self.SIZE)
        self._mm = mmap.mmap(self._fd, self.SIZE)
        self._local = threading.Lock()
        if create:
            if not rate > 0 or not burst > 0:
                raise ValueError(f"timeline rate and burst must be > 0, got {rate!r}, {burst!r}")
            self._store(time.time() if start is None else start, time.time(), burst, rate, burst)

    def _load(self) -> tuple[float, float, float, float, float]:
        """(now, last_real, credit, rate, burst), consistent even while another process writes."""
        while True:
            seq, *values = struct.unpack_from(self.FORMAT, self._mm, 0)
            if seq % 2 == 0 and struct.unpack_from("<Q", self._mm, 0)[0] == seq:
                return values[0], values[1], values[2], values[3], values[4]
            time.sleep(0)  # a writer is half-way: let it finish (it may be a thread of this process)

    def _store(self, *values: float) -> None:
        """Write the state under the seqlock (odd while writing); caller holds the file lock or creates."""
        seq = struct.unpack_from("<Q", self._mm, 0)[0]
        struct.pack_into("<Q", self._mm, 0, seq + 1)
        struct.pack_into("<ddddd", self._mm, 8, *values)
        struct.pack_into("<Q", self._mm, 0, seq + 2)

    @property
    def rate(self) -> float:
        """Simulated seconds per real second at most (on average)."""
        return self._load()[3]

    def now(self) -> float:
        """Simulated Unix time in seconds (stands still between jumps)."""
        return self._load()[0]

    def _step(self, wanted: float) -> float:
        """Jump by up to `wanted` simulated seconds now (as far as the credit allows); returns the jump."""
        with self._local:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                now, last, credit, rate, burst = self._load()
                wall = time.time()
                credit = min(burst, credit + max(0.0, wall - last) * rate)
                step = max(0.0, min(wanted, credit))
                self._store(now + step, wall, credit - step, rate, burst)
                return step
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def advance(self, sim_seconds: float) -> None:
        """A wait on the machine: move simulated time forward by `sim_seconds` (blocks only while over the rate)."""
        left = sim_seconds
        while left > 1e-12:
            left -= self._step(left)
            if left > 1e-12:
                time.sleep(min(left, 1.0) / self.rate)

    async def aadvance(self, sim_seconds: float) -> None:
        """`advance` for the event loop."""
        left = sim_seconds
        while left > 1e-12:
            left -= self._step(left)
            if left > 1e-12:
                await asyncio.sleep(min(left, 1.0) / self.rate)

    def close(self) -> None:
        """Release the mapping and the file descriptor."""
        self._mm.close()
        os.close(self._fd)
