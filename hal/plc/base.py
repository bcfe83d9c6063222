"""The PLC as the controller sees it: a typing.Protocol of the signals and commands it uses. PlcDriver (OPC UA,
hal/plc/driver.py) is the implementation; the node ids, security and subscriptions stay there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Plc"]


class Plc(Protocol):
    """The machine's PLC: subscribed signals by name, reads, and the few commands the controller gives."""

    @property
    def connected(self) -> bool:
        """True while the link to the PLC is up."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The latest subscribed value of every signal (each a (value, timestamp) sample)."""
        ...

    def on_change(self, callback: Callable[..., Any]) -> Callable[[], None]:
        """Call `callback(signal, value, timestamp)` on every subscribed change; returns the unsubscribe."""
        ...

    def on_link(self, callback: Callable[..., Any]) -> Callable[[], None]:
        """Call `callback(up, reason)` when the link goes down or comes back; returns the unsubscribe."""
        ...

    async def read(self, signal: str) -> Any:
        """Read `signal` from the PLC now (not from the subscription)."""
        ...

    async def set_lamp(self, on: bool) -> None:
        """Command the UV lamp on or off."""
        ...

    async def set_door_lock(self, locked: bool) -> None:
        """Command the enclosure door lock."""
        ...

    async def move_positioner(self, position: int, timeout_s: float = 10.0) -> None:
        """Move the vial positioner to `position` (0 = home, over the waste tray) and wait until it is there."""
        ...
