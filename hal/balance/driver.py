"""MT-SICS balance driver: the Balance interface over a SerialLink (or a ReplayLink), with typed errors and logs.

Time: deadlines are wall-clock (`time.monotonic`). Durations that are the device's own (the caller's weighing timeout,
the balance's internal stability wait, the pause between `S` retries) are given in device seconds and divided by
`clock_speed`, so the same code runs against a real balance (speed 1) and a fast simulator.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

import structlog

from hal.balance.base import Balance
from hal.balance.errors import (
    BalanceBusy,
    BalanceLinkLost,
    BalanceNotStable,
    BalanceTimeout,
    BalanceUnitError,
)
from hal.balance.protocol import (
    TERMINATOR,
    Reading,
    build_command,
    parse_ack,
    parse_serial,
    parse_weight,
    tare_preset_command,
)
from hal.transport import LinkClosed, LinkError, LinkTimeout, WireLog
from hal.transport.serial_link import SerialLink


class LineLink(Protocol):
    """What the driver needs of a link: SerialLink and ReplayLink both fit."""

    device: str

    def exchange(self, request: bytes, *, terminator: bytes, extra: int = 0, timeout: float = 1.0) -> bytes: ...

    def close(self) -> None: ...


class MtSicsBalance(Balance):
    """A Mettler Toledo balance speaking MT-SICS level 0/1 (@, I4, S, SI, Z, T, TA, TAC) over one serial link."""

    def __init__(
        self,
        link: LineLink,
        *,
        reply_timeout_s: float = 1.0,
        command_timeout_s: float = 5.0,
        retry_pause_s: float = 0.1,
        clock_speed: float = 1.0,
        unit: str | None = "g",
        pause: Callable[[float], Any] = time.sleep,
    ) -> None:
        """`reply_timeout_s` (wall) bounds an immediate answer; `command_timeout_s` (device s) is the longest the
        balance itself may wait for stability before answering S / Z / T; `unit` is the unit every weight must
        carry (None accepts any)."""
        if not clock_speed > 0:
            raise ValueError(f"clock_speed must be > 0, got {clock_speed!r}")
        self.link = link
        self.reply_timeout_s = reply_timeout_s
        self.command_timeout_s = command_timeout_s
        self.retry_pause_s = retry_pause_s
        self.clock_speed = float(clock_speed)
        self.unit = unit
        self._pause = pause  # waits between retries (real s); a shared simulated timeline moves time instead
        self.device = getattr(link, "device", "balance")
        self.log = structlog.get_logger("hal.balance").bind(device=self.device)

    @classmethod
    def open(
        cls,
        port: str,
        *,
        baudrate: int = 9600,
        device: str = "balance",
        wire_log: WireLog | None = None,
        exclusive: bool = False,
        **kw: Any,
    ) -> "MtSicsBalance":
        """Open `port` (device path or pyserial URL) at `baudrate` 8N1; BalanceLinkLost if it cannot be opened."""
        link = SerialLink(port, device=device, baudrate=baudrate, wire_log=wire_log, exclusive=exclusive)
        try:
            link.open()
        except LinkError as exc:
            raise BalanceLinkLost(f"{device}: cannot open balance port {port!r}: {exc}") from exc
        return cls(link, **kw)

    # -- the wire --------------------------------------------------------------------------------------------------
    @property
    def settle_timeout_s(self) -> float:
        """Wall seconds to wait for the answer to a command the balance may hold until the load is stable."""
        return self.reply_timeout_s + self.command_timeout_s / self.clock_speed

    def _exchange(self, command: str, timeout: float) -> bytes:
        request = build_command(command)
        try:
            reply = self.link.exchange(request, terminator=TERMINATOR, timeout=timeout)
        except LinkTimeout as exc:
            self.log.warning("balance.no_answer", command=command, timeout_s=timeout, partial=exc.partial.hex())
            raise BalanceTimeout(
                f"{self.device}: no answer to {command!r} within {timeout:.3f} s", command=command, reply=exc.partial
            ) from exc
        except (LinkClosed, LinkError) as exc:
            self.log.warning("balance.link_lost", command=command, error=str(exc))
            raise BalanceLinkLost(f"{self.device}: link lost during {command!r}: {exc}", command=command) from exc
        self.log.debug("balance.exchange", command=command, reply=reply.decode("ascii", "replace").rstrip())
        return reply

    def _reading(self, line: bytes, command: str) -> Reading:
        reading = parse_weight(line, command)
        if self.unit is not None and reading.unit != self.unit:
            raise BalanceUnitError(
                f"{self.device}: balance reports {reading.unit!r}, expected {self.unit!r}; "
                f"set the balance's host unit to {self.unit}",
                command=command,
                reply=line,
            )
        return reading

    # -- commands --------------------------------------------------------------------------------------------------
    def reset(self) -> str:
        """`@`: cancel what the balance is doing and clear its tare; returns the serial number it answers with."""
        sn = parse_serial(self._exchange("@", self.reply_timeout_s), "@")
        self.log.info("balance.reset", serial_number=sn)
        return sn

    def serial_number(self) -> str:
        """`I4`: the balance's serial number."""
        return parse_serial(self._exchange("I4", self.reply_timeout_s), "I4")

    def identity(self) -> str:
        """The serial number (I4)."""
        return self.serial_number()

    def weigh_stable(self, timeout_s: float = 10.0) -> Reading:
        """`S`, repeated while the balance answers `S I`, until `timeout_s` device seconds have passed.

        The balance may hold an `S` up to `command_timeout_s` before answering, so the last attempt can end up to
        that long after the deadline; a stable weight arriving then is still returned. Raises BalanceNotStable
        (a BalanceBusy) when every answer was `S I`, BalanceTimeout when the balance does not answer at all.
        """
        deadline = time.monotonic() + timeout_s / self.clock_speed
        pause = self.retry_pause_s / self.clock_speed
        attempts = 0
        while True:
            attempts += 1
            line = self._exchange("S", self.settle_timeout_s)
            try:
                reading = self._reading(line, "S")
            except BalanceBusy as exc:
                if time.monotonic() + pause >= deadline:
                    self.log.warning("balance.not_stable", timeout_s=timeout_s, attempts=attempts)
                    raise BalanceNotStable(
                        f"{self.device}: no stable weight within {timeout_s:g} s ({attempts} x S answered S I)",
                        command="S",
                        reply=exc.reply,
                    ) from exc
                self._pause(pause)
                continue
            self.log.info("balance.weigh_stable", value=reading.value, unit=reading.unit, attempts=attempts)
            return reading

    def weigh_now(self) -> Reading:
        """`SI`: the net weight now; `stable` False for a dynamic (`S D`) value."""
        reading = self._reading(self._exchange("SI", self.reply_timeout_s), "SI")
        self.log.debug("balance.weigh_now", value=reading.value, unit=reading.unit, stable=reading.stable)
        return reading

    def zero(self) -> None:
        """`Z`: zero the balance (it waits for stability itself; `Z I` -> BalanceBusy)."""
        parse_ack(self._exchange("Z", self.settle_timeout_s), "Z")
        self.log.info("balance.zero")

    def tare(self) -> Reading:
        """`T`: tare the stable load; returns the tare weight (`T I` -> BalanceBusy)."""
        reading = self._reading(self._exchange("T", self.settle_timeout_s), "T")
        self.log.info("balance.tare", value=reading.value, unit=reading.unit)
        return reading

    def tare_value(self) -> Reading:
        """`TA`: the tare weight held in memory."""
        return self._reading(self._exchange("TA", self.reply_timeout_s), "TA")

    def preset_tare(self, value: float) -> Reading:
        """`TA <value> <unit>`: set the tare memory to a known weight (`TA L` -> BalanceLogicalError)."""
        command = tare_preset_command(value, self.unit or "g")
        reading = self._reading(self._exchange(command, self.reply_timeout_s), command)
        self.log.info("balance.preset_tare", value=reading.value, unit=reading.unit)
        return reading

    def clear_tare(self) -> None:
        """`TAC`: clear the tare memory."""
        parse_ack(self._exchange("TAC", self.reply_timeout_s), "TAC")
        self.log.info("balance.clear_tare")

    def close(self) -> None:
        """Close the serial link."""
        self.link.close()
