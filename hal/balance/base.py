"""The balance as the controller sees it: a small Protocol, one real implementation per balance protocol (MT-SICS in
hal/balance/driver.py); the controller is typed against this, never against a driver."""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol

from hal.balance.protocol import Reading


class Balance(Protocol):
    """A check-weigh balance: identify, zero, tare, weigh. Every failure raises a hal.balance.errors type."""

    @abstractmethod
    def identity(self) -> str:
        """The balance's serial number (for the record: which instrument weighed)."""

    @abstractmethod
    def zero(self) -> None:
        """Set the zero point to the current load (waits for stability on the balance)."""

    @abstractmethod
    def tare(self) -> Reading:
        """Tare the current load and return the tare weight taken."""

    @abstractmethod
    def weigh_stable(self, timeout_s: float = 10.0) -> Reading:
        """The next stable net weight, waiting up to `timeout_s` (simulated / device seconds)."""

    @abstractmethod
    def weigh_now(self) -> Reading:
        """The net weight at once, stable or not (`Reading.stable` says which)."""

    @abstractmethod
    def clear_tare(self) -> None:
        """Clear the tare memory."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""
