"""The controller's side of the PLC's safety program: claim the line, keep the heartbeat going, read/reset its alarm.

The PLC grants the line to one owner at a time (a lease renewed by the heartbeat); when the heartbeat stops for the
PLC's watchdog time, the PLC itself switches the lamp off, stops the positioner and latches an alarm
(docs/devices/plc.md). This class writes the heartbeat from the controller's event loop, so a controller that
hangs or dies stops it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import socket
from dataclasses import dataclass

import structlog
from asyncua import ua

from hal.plc.driver import PlcDriver
from hal.plc.errors import PlcError
from hal.transport.tasks import cancel_and_wait

log = structlog.get_logger("hal.plc.guard")


class LineClaimed(PlcError):
    """Another controller holds the line on the PLC; the message names it (host, pid, batch)."""

    def __init__(self, line_id: str, holder: str) -> None:
        super().__init__(f"line {line_id} is held by another controller on the PLC ({holder}); nothing was sent "
                         "to the devices")
        self.line_id = line_id
        self.holder = holder


@dataclass(frozen=True)
class PlcAlarm:
    """The PLC's latched alarm (e.g. a watchdog trip while no controller was alive)."""

    tripped: bool
    message: str
    time: float  # the PLC's clock, Unix seconds


def owner_info(line_id: str, batch: str | None = None, what: str = "") -> str:
    """What a refused claimant is told about the holder: line, host, pid, command and batch."""
    parts = [f"line {line_id}", f"host {socket.gethostname()}", f"pid {os.getpid()}"]
    if what:
        parts.append(what)
    parts.append(f"batch {batch}" if batch else "no batch yet")
    return ", ".join(parts)


def _holder_dead(holder: str) -> bool:
    """True when `holder` (owner_info text) names a process of this host that no longer exists."""
    fields = dict(part.split(" ", 1) for part in holder.split(", ") if " " in part)
    if fields.get("host") != socket.gethostname():
        return False
    try:
        pid = int(fields.get("pid", ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class PlcLineGuard:
    """Claims the line on the PLC for this process and writes the controller heartbeat while it holds it."""

    def __init__(self, plc: PlcDriver, line_id: str, *, what: str = "", clock_speed: float = 1.0) -> None:
        self.plc = plc
        self.line_id = line_id
        self.what = what
        self.clock_speed = clock_speed
        self.token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self.watchdog_s = 0.0  # the PLC's, simulated seconds; read at claim
        self.held = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = False  # the heartbeat loop's own stop flag (a cancel alone can be lost, see stop_heartbeat)
        self._counter = itertools.count(1)

    async def claim(self, batch: str | None = None) -> None:
        """Claim (or update the holder info of) the line; LineClaimed naming the holder if another has it. Starts
        the heartbeat."""
        info = owner_info(self.line_id, batch, self.what)
        for attempt in range(3):
            answer = await self.plc.call_method("line_object", "line_claim",
                                                ua.Variant(self.token, ua.VariantType.String),
                                                ua.Variant(info, ua.VariantType.String))
            if not answer:
                break
            if attempt == 2 or not _holder_dead(str(answer)):
                raise LineClaimed(self.line_id, str(answer))
            # the holder was a process of this host that died: its lease runs out after the PLC's watchdog time
            # (and the PLC has made the line safe by then); wait for that instead of refusing
            watchdog_s = float(await self.plc.read("line_watchdog_s"))
            log.warning("plc.claim_waits_for_dead_holder", holder=str(answer), watchdog_s=watchdog_s)
            await asyncio.sleep(watchdog_s / self.clock_speed * 1.1 + 0.1)
        self.held = True
        if self._task is None:
            self._stopping = False
            self.watchdog_s = float(await self.plc.read("line_watchdog_s"))
            await self.beat()
            self._task = asyncio.get_running_loop().create_task(self._heartbeat(), name="plc-heartbeat")

    async def beat(self) -> None:
        """Write one new heartbeat value."""
        await self.plc.write("line_heartbeat", next(self._counter) % 2_000_000_000)

    def interval_real_s(self) -> float:
        """Real seconds between heartbeats: a quarter of the PLC's watchdog time."""
        return max(0.01, self.watchdog_s / 4.0 / self.clock_speed)

    async def _heartbeat(self) -> None:
        """Write the heartbeat every interval until cancelled."""
        while not self._stopping:
            await asyncio.sleep(self.interval_real_s())
            if self._stopping:
                return
            try:
                await self.beat()
            except PlcError as exc:  # link down: the PLC's watchdog decides; keep trying
                log.warning("plc.heartbeat_failed", error=str(exc))

    async def alarm(self) -> PlcAlarm:
        """The PLC's latched alarm, read now."""
        v = await self.plc.read_many(["watchdog_tripped", "plc_alarm", "plc_alarm_time"])
        return PlcAlarm(bool(v["watchdog_tripped"]), str(v["plc_alarm"]), float(v["plc_alarm_time"]))

    async def reset_alarm(self) -> bool:
        """Clear the PLC's latched alarm (after it has been recorded); only the holder may."""
        return bool(await self.plc.call_method("line_object", "line_reset_alarm",
                                               ua.Variant(self.token, ua.VariantType.String)))

    async def stop_heartbeat(self) -> None:
        """Stop writing the heartbeat (the PLC's watchdog trips after its time unless the line is released)."""
        if self._task is not None:
            # On Python 3.11 a cancel that lands while asyncua's request (asyncio.wait_for) completes can be
            # swallowed, and the loop would beat on for ever; the flag ends it at the next turn, the cancel is
            # repeated until the task is done.
            self._stopping = True
            await cancel_and_wait([self._task])
            self._task = None

    async def release(self) -> None:
        """Give the line back (disarms the watchdog without a trip) and stop the heartbeat."""
        await self.stop_heartbeat()
        if self.held:
            self.held = False
            try:
                await self.plc.call_method("line_object", "line_release", ua.Variant(self.token, ua.VariantType.String))
            except PlcError as exc:  # the lease runs out by itself; the watchdog then makes the line safe
                log.warning("plc.release_failed", error=str(exc))
