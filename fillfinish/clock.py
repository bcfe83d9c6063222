"""The controller's clock: simulated Unix time running `speed` times faster than the wall clock.

The simulator has a twin (`sim/clock.py`) computing the same formula from the same two numbers (`epoch`, `speed`),
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
from typing import Callable


class Clock:
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
        """Await `sim_seconds` of simulated time without moving it (background watchers on a timeline). A watcher
        looks at the timeline every 5-20 real ms: it may wake a little after its time, never before, and does not
        spin (the monitor's watchdog, polling every 0.5-2.5 ms, took about 5 % of the controller's CPU in a fill)."""
        if self.timeline is None:
            await asyncio.sleep(self.real_seconds(sim_seconds))
            return
        until = self.timeline.now() + sim_seconds
        while (left := until - self.timeline.now()) > 0:
            await asyncio.sleep(min(0.02, max(0.005, left / self.speed)))

    def device_sleep(self, real_seconds: float) -> None:
        """A driver's pause of `real_seconds` between status questions (drivers divide device time by `speed`): on a
        timeline, simulated time that ends early at a change the machine announced (`Timeline.wake`)."""
        if self.timeline is not None:
            self.timeline.advance(max(0.0, real_seconds) * self.speed, to_wake=True)
        else:
            time.sleep(real_seconds)

    async def device_asleep(self, real_seconds: float) -> None:
        """`device_sleep` for the event loop."""
        if self.timeline is not None:
            await self.timeline.aadvance(max(0.0, real_seconds) * self.speed, to_wake=True)
        else:
            await asyncio.sleep(real_seconds)

    def wake(self, at: float) -> None:
        """Announce a change the machine makes on its own at simulated time `at` (a poller's pause ends there on a
        timeline; nothing to do on a steady clock, where pauses are real time)."""
        if self.timeline is not None:
            self.timeline.wake(at)


class Timeline:
    """Simulated time for `--speed max`, shared through a small file (so two processes can share it, like [clock]).

    It stands still while the software works and jumps forward only when a wait on the machine asks for it
    (`advance`), at most `rate` simulated seconds per real second on average with bursts of up to `burst` seconds:
    the software's own real cost adds no simulated time, and the real-time pipelines that carry the machine's
    signals (OPC UA publishing, notifications) keep up with the jumps. A device that knows when it will next change
    on its own (the positioner's arrival) announces it with `wake(at)`; a poller's pause (`advance(..., to_wake=True)`)
    ends there, so the next read sees the change and no simulated time is spent past it (a discrete-event jump to the
    next wake-up). File layout: seqlock counter, simulated now, real time of the last jump, credit (simulated s that
    may be jumped at once), rate, burst, next announced wake-up (0: none).
    """

    FORMAT = "<Qdddddd"
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
            self._store(time.time() if start is None else start, time.time(), burst, rate, burst, 0.0)

    def _load(self, *, writer: bool = False) -> tuple[float, float, float, float, float, float]:
        """(now, last_real, credit, rate, burst, wake_at), consistent even while another process writes.

        `writer`: the caller holds the file lock, so no live writer is half-way and an odd counter was left by a
        writer that died mid-write (a killed process): its values are taken as they are. A reader that keeps seeing
        an odd counter checks whether both locks are free and, if so, writes the values back (so it cannot spin for
        ever after a writer was killed)."""
        spins = 0
        while True:
            seq, *values = struct.unpack_from(self.FORMAT, self._mm, 0)
            if (seq % 2 == 0 or writer) and struct.unpack_from("<Q", self._mm, 0)[0] == seq:
                return values[0], values[1], values[2], values[3], values[4], values[5]
            spins += 1
            if spins % 1000 == 0:
                self._repair_if_writer_died()
            time.sleep(0)  # a writer is half-way: let it finish (it may be a thread of this process)

    def _repair_if_writer_died(self) -> None:
        """With both locks free and the counter still odd, its writer died mid-write: write its values back under
        the locks, which leaves the counter even (never waits for a lock: a live writer is simply let finish)."""
        if not self._local.acquire(blocking=False):
            return
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            try:
                if struct.unpack_from("<Q", self._mm, 0)[0] % 2 == 1:
                    self._store(*self._load(writer=True))
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._local.release()

    def _store(self, *values: float) -> None:
        """Write the state under the seqlock (odd while writing, even after; an odd counter a dead writer left is
        stepped past); caller holds the file lock or creates."""
        seq = struct.unpack_from("<Q", self._mm, 0)[0]
        writing = seq + 1 if seq % 2 == 0 else seq + 2
        struct.pack_into("<Q", self._mm, 0, writing)
        struct.pack_into("<dddddd", self._mm, 8, *values)
        struct.pack_into("<Q", self._mm, 0, writing + 1)

    @property
    def rate(self) -> float:
        """Simulated seconds per real second at most (on average)."""
        return self._load()[3]

    def now(self) -> float:
        """Simulated Unix time in seconds (stands still between jumps)."""
        return self._load()[0]

    def _locked(self, change: Callable[[tuple[float, ...]], tuple[float, ...]]) -> tuple[float, ...]:
        """Apply `change` to the state under the thread and file locks; returns the state written."""
        with self._local:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                state = change(self._load(writer=True))
                self._store(*state)
                return state
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def wake(self, at: float) -> None:
        """Announce a change the machine will make on its own at simulated time `at` (the earliest one is kept)."""
        def change(state: tuple[float, ...]) -> tuple[float, ...]:
            now, last, credit, rate, burst, wake_at = state
            if at > now:
                wake_at = at if wake_at <= now else min(wake_at, at)
            return now, last, credit, rate, burst, wake_at
        self._locked(change)

    def _step(self, wanted: float, to_wake: bool = False) -> tuple[float, bool]:
        """Jump by up to `wanted` simulated seconds now (as far as the credit allows, and with `to_wake` no further
        than the next announced wake-up); returns (the jump, whether it reached that wake-up)."""
        result = [0.0, False]

        def change(state: tuple[float, ...]) -> tuple[float, ...]:
            now, last, credit, rate, burst, wake_at = state
            wall = time.time()
            credit = min(burst, credit + max(0.0, wall - last) * rate)
            room = wanted
            woke = False
            if to_wake and wake_at > now and wake_at - now <= wanted:
                room, woke = wake_at - now, True
            step = max(0.0, min(room, credit))
            woke = woke and step >= room
            if wake_at and now + step >= wake_at:
                wake_at = 0.0  # reached: nobody waits for it any more
            result[0], result[1] = step, woke
            return now + step, wall, credit - step, rate, burst, wake_at
        self._locked(change)
        return result[0], result[1]

    def advance(self, sim_seconds: float, *, to_wake: bool = False) -> float:
        """A wait on the machine: move simulated time forward by `sim_seconds` (blocks only while over the rate);
        with `to_wake`, a poller's pause, it ends at an announced wake-up that comes first. Returns the time moved."""
        left = sim_seconds
        while left > 1e-12:
            step, woke = self._step(left, to_wake)
            left -= step
            if woke:
                break
            if left > 1e-12:
                time.sleep(min(left, 1.0) / self.rate)
        return sim_seconds - max(0.0, left)

    async def aadvance(self, sim_seconds: float, *, to_wake: bool = False) -> float:
        """`advance` for the event loop."""
        left = sim_seconds
        while left > 1e-12:
            step, woke = self._step(left, to_wake)
            left -= step
            if woke:
                break
            if left > 1e-12:
                await asyncio.sleep(min(left, 1.0) / self.rate)
        return sim_seconds - max(0.0, left)

    def close(self) -> None:
        """Release the mapping and the file descriptor."""
        self._mm.close()
        os.close(self._fd)
