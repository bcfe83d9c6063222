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
from hal.plc.security import PlcSecurity
from hal.plc.signals import validate_nodes
from hal.transport.wirelog import WireLog

T = TypeVar("T")
log = structlog.get_logger("fillfinish.line")


class Line:
    """The machine's three device connections, opened and closed together."""

    def __init__(self, config: SiteConfig, *, wire_log: WireLog | None = None) -> None:
        self.config = config
        self.wire_log = wire_log or WireLog()
        speed = config.clock.speed
        d = config.dispenser
        validate_nodes(dict(config.plc.nodes))
        # on a simulator's shared timeline (--speed max) the drivers' pauses are waits on the machine: they move
        # simulated time instead of sleeping, so the software's own real cost adds no simulated time
        clock = Clock(speed, config.clock.epoch, config.clock.timeline) if config.clock.timeline else None
        pauses: dict[str, Any] = {"pause": clock.device_sleep} if clock else {}
        self.pump = CavroPump.open(
            d.port, baudrate=d.baudrate, device="pump", wire_log=self.wire_log, address=d.address,
            syringe_ul=d.syringe_ul, model=d.model, resolution=d.resolution, protocol=d.protocol, clock_speed=speed,
            **pauses,
        )
        try:
            self.balance = MtSicsBalance.open(
                config.balance.port, baudrate=config.balance.baudrate, device="balance", wire_log=self.wire_log,
                clock_speed=speed, **pauses,
            )
        except Exception:
            self.pump.close()  # do not leak the pump's port when the balance's cannot be opened
            raise
        self.plc = PlcDriver(
            config.plc.endpoint, dict(config.plc.nodes), security=_security(config), wire_log=self.wire_log,
            clock_speed=speed, pause=clock.device_asleep if clock else None,
        )

    async def open(self) -> None:
        await self.plc.connect()

    async def close(self) -> None:
        try:
            await self.plc.close()
        finally:
            for dev in (self.pump, self.balance):
                try:
                    await asyncio.to_thread(dev.close)
                except Exception as exc:  # closing a port that is already gone must not hide the real outcome
                    log.warning("line.close_failed", device=type(dev).__name__, error=str(exc))

    @staticmethod
    async def call(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run a blocking serial driver call (pump, balance) in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kw)


def _security(config: SiteConfig) -> PlcSecurity | None:
    """The PLC session's security from the site config's [plc] fields (None for security = "None")."""
    p = config.plc
    return PlcSecurity.from_site(p.security, certificate=p.certificate, private_key=p.private_key,
                                 server_certificate=p.server_certificate, username=p.username, password=p.password)
