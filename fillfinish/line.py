"""The line: the controller's handle on the machine's devices (pump, balance, PLC), built from the site config.

Serial drivers are blocking (one exchange at a time under their link's lock); `Line.call` runs them in a worker
thread so the event loop keeps serving the PLC subscriptions and the
monitor while a dispense is under way, and so an interlock can send the pump's terminate at once.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, TypeVar

import structlog

from fillfinish.clock import Clock
from fillfinish.config import SiteConfig
from hal.balance.driver import MtSicsBalance
from hal.dispenser.driver import CavroPump
from hal.plc.driver import PlcDriver
from hal.plc.guard import PlcAlarm, PlcLineGuard
from hal.plc.security import PlcSecurity
from hal.plc.signals import validate_nodes
from hal.transport.tasks import run_in_own_thread
from hal.transport.wirelog import WireLog

T = TypeVar("T")
log = structlog.get_logger("fillfinish.line")


TIMELINE_PUMP_REPLY_TIMEOUT_S = 1.0  # the pump's answer timeout on a simulator's shared timeline (decision 0019)
TIMELINE_PLC_TIMEOUT_S = 10.0  # the PLC link's request timeout there, for the same reason (a real PLC keeps 2 s)


class Line:
    """The machine's three device connections, opened and closed together. `open()` claims the line on the PLC
    (one controller per line) before the serial ports are opened (exclusively) or anything is sent to a device."""

    def __init__(self, config: SiteConfig, *, wire_log: WireLog | None = None, what: str = "controller") -> None:
        self.config = config
        self.wire_log = wire_log or WireLog()
        validate_nodes(dict(config.plc.nodes))
        # on a simulator's shared timeline (--speed max) the drivers' pauses are waits on the machine: they move
        # simulated time instead of sleeping, so the software's own real cost adds no simulated time
        speed = config.clock.speed
        clock = Clock(speed, config.clock.epoch, config.clock.timeline) if config.clock.timeline else None
        self._pauses: dict[str, Any] = {"pause": clock.device_sleep} if clock else {}
        # on a timeline the emulator answers from a thread of a loaded PC, not from a pump's firmware: its scheduling
        # stalls are not the machine's, so the pump's answer timeout (real time) is a second instead of 0.1 s
        self._pump_timeouts: dict[str, Any] = {"reply_timeout_s": TIMELINE_PUMP_REPLY_TIMEOUT_S} if clock else {}
        self.plc = PlcDriver(
            config.plc.endpoint, dict(config.plc.nodes), security=_security(config), wire_log=self.wire_log,
            clock_speed=speed, pause=clock.device_asleep if clock else None,
            timeout_s=max(config.plc.request_timeout_s, TIMELINE_PLC_TIMEOUT_S if clock else 0.0),
            link_check_s=config.plc.link_check_s,
        )
        self.guard = PlcLineGuard(self.plc, config.line.id, what=what, clock_speed=speed)
        self.plc_alarm: PlcAlarm | None = None  # the PLC's latched alarm found at open (recorded by the caller)
        self.pump: CavroPump = None  # type: ignore[assignment]  # opened by open(), after the claim
        self.balance: MtSicsBalance = None  # type: ignore[assignment]

    async def open(self) -> None:
        """Connect the PLC, claim the line (LineClaimed naming the holder), then open the serial ports exclusively."""
        await self.plc.connect()
        try:
            await self.guard.claim()
            self.plc_alarm = await self.guard.alarm()
            self._open_serial()
        except BaseException:
            await self.close()
            raise

    def _open_serial(self) -> None:
        """Pump and balance ports, each opened exclusively (a second process on the same ports is refused)."""
        d, speed = self.config.dispenser, self.config.clock.speed
        self.pump = CavroPump.open(
            d.port, baudrate=d.baudrate, device="pump", wire_log=self.wire_log, address=d.address,
            syringe_ul=d.syringe_ul, model=d.model, resolution=d.resolution, protocol=d.protocol, clock_speed=speed,
            reply_timeout_s=max(d.reply_timeout_s, self._pump_timeouts.get("reply_timeout_s", 0.0)), exclusive=True,
            **self._pauses,
        )
        try:
            self.pump.link.open()
            self.balance = MtSicsBalance.open(
                self.config.balance.port, baudrate=self.config.balance.baudrate, device="balance",
                wire_log=self.wire_log, clock_speed=speed, exclusive=True, **self._pauses,
            )
        except Exception:
            self.pump.close()  # do not leak the pump's port when the balance's cannot be opened
            self.pump = None  # type: ignore[assignment]
            raise

    async def claim(self, batch: str | None) -> None:
        """Tell the PLC which batch this controller runs (shown to a refused second claimant)."""
        await self.guard.claim(batch)

    async def close(self) -> None:
        """Close the serial ports, release the line on the PLC and close its session.

        The ports are closed by a thread of their own, started before the first await: a cancel that lands while the
        line closes (a task cancelled again during its clean-up, a second Ctrl-C) ends the wait, never the closing.
        Awaited one by one through `asyncio.to_thread` before, such a cancel skipped the balance's close, or dropped the
        pump's too when no worker thread had started it yet: the port stayed open and locked against the next
        controller (stress s17: `batch recover` found the pump's port locked and could not switch the lamp off)."""
        ports = self._close_ports_in_thread()
        try:
            await self.guard.release()
            await self.plc.close()
        finally:
            await ports

    def _close_ports_in_thread(self) -> asyncio.Future[None]:
        """Start closing pump and balance in a thread of their own; the future is done when both are closed."""
        devices = [dev for dev in (self.pump, self.balance) if dev is not None]

        def close_all() -> None:
            for dev in devices:
                try:
                    dev.close()
                except Exception as exc:  # closing a port that is already gone must not hide the real outcome
                    log.warning("line.close_failed", device=type(dev).__name__, error=str(exc))

        return run_in_own_thread(close_all, "line-close-ports")

    @staticmethod
    async def call(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run a blocking serial driver call (pump, balance) in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kw)


def _security(config: SiteConfig) -> PlcSecurity | None:
    """The PLC session's security from the site config's [plc] fields (None for security = "None")."""
    p = config.plc
    return PlcSecurity.from_site(p.security, certificate=p.certificate, private_key=p.private_key,
                                 server_certificate=p.server_certificate, username=p.username, password=p.password)
