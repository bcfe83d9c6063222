"""The dispenser interface the controller codes against; CavroPump is its one real implementation."""

from __future__ import annotations

from abc import ABC, abstractmethod

from hal.dispenser.protocol import PumpStatus

__all__ = ["Dispenser", "PumpStatus"]


class Dispenser(ABC):
    """A syringe dispenser: initialise, aspirate, dispense, terminate, report. Volumes in uL."""

    @abstractmethod
    def initialise(self) -> None:
        """Home plunger and valve; required before any move and after an error or terminate."""

    @abstractmethod
    def aspirate(self, volume_ul: float) -> float:
        """Draw `volume_ul` into the syringe through the current valve port; returns the volume moved."""

    @abstractmethod
    def dispense(self, volume_ul: float) -> float:
        """Push `volume_ul` out through the current valve port; returns the volume delivered.

        Raises DispenseTerminated (with delivered_ul) if terminate() stopped it, DispenseOutcomeUnknown if the
        outcome cannot be known (timeout, link loss): never retried.
        """

    @abstractmethod
    def terminate(self) -> None:
        """Stop a running plunger move at once (callable from another thread while a dispense is under way)."""

    @abstractmethod
    def status(self) -> PumpStatus:
        """Ready/busy and the error code, without raising on the error code."""

    @abstractmethod
    def volume_in_syringe_ul(self) -> float:
        """The volume in the syringe now, from the pump's plunger position."""

    @abstractmethod
    def valve(self, port: str | int) -> None:
        """Turn the valve to "input", "output", "bypass" or a distribution port number."""

    @abstractmethod
    def identity(self) -> str:
        """Model, firmware and address, for the record."""

    @abstractmethod
    def close(self) -> None:
        """Release the line."""
