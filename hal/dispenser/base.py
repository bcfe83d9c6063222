"""The dispenser interface the controller codes against, in domain verbs (uL, uL/s); the Cavro XCalibur/XLP driver
(hal/dispenser/driver.py) is one implementation and hal/dispenser/memory.py an in-memory one. Pulses, resolutions,
steps and force codes are a driver's business: a second pump model is one new driver of this interface."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from hal.dispenser.protocol import PumpStatus

__all__ = ["Dispenser", "PumpStatus"]


class Dispenser(ABC):
    """A syringe dispenser with a reservoir port and an output port (to the dispensing tip). Volumes in uL, rates in
    uL/s. Every failure raises a hal.dispenser.errors.PumpError type."""

    @property
    @abstractmethod
    def capacity_ul(self) -> float:
        """The syringe's volume (uL)."""

    @abstractmethod
    def identity(self) -> str:
        """Model, firmware and address, for the record."""

    @abstractmethod
    def reinitialise(self) -> None:
        """Home plunger and valve (a plunger move, so over the waste) and leave the valve at the output; required
        at start, after an error, a terminate or a restart."""

    @abstractmethod
    def draw(self, volume_ul: float, *, rate_ul_s: float) -> float:
        """Draw `volume_ul` from the reservoir into the syringe at `rate_ul_s`, the valve back at the output
        afterwards; returns the volume drawn (uL)."""

    @abstractmethod
    def dispense(self, volume_ul: float, *, rate_ul_s: float | None = None,
                 inhibit: threading.Event | None = None) -> float:
        """Push `volume_ul` out through the output at `rate_ul_s` (None: the rate last used); returns the volume
        delivered (uL). Not started if `inhibit` is set just before. Raises DispenseTerminated (with delivered_ul)
        if terminate() stopped it, DispenseOutcomeUnknown if the outcome cannot be known: never retried."""

    def prime(self, volume_ul: float, *, rate_ul_s: float, inhibit: threading.Event | None = None) -> float:
        """Purge `volume_ul` through the fluid path (the caller has the tip over the waste); returns uL delivered."""
        return self.dispense(volume_ul, rate_ul_s=rate_ul_s, inhibit=inhibit)

    @abstractmethod
    def empty_to_waste(self, *, rate_ul_s: float) -> None:
        """Push whatever the syringe holds out through the output (the caller has the tip over the waste), after
        any move still running has ended."""

    @abstractmethod
    def terminate(self) -> None:
        """Stop a running plunger move at once (callable from another thread while a dispense is under way)."""

    @abstractmethod
    def status(self) -> PumpStatus:
        """Ready/busy and the error code, without raising on the error code (raises only if it does not answer)."""

    @abstractmethod
    def volume_in_syringe_ul(self) -> float:
        """The volume in the syringe now (uL)."""

    def reported_volume_ul(self) -> float | None:
        """The syringe's contents (uL) as the pump last reported them, when nothing that moves the plunger went to it
        since; None when a driver would have to ask (then call volume_in_syringe_ul). Never waits on the line, so
        the event loop may call it without a worker thread."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Release the line."""
