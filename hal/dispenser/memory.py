"""An in-memory dispenser: the Dispenser interface with no device behind it (volumes only, no pulses or codes).

For tests of what codes against the interface, and the proof that a second pump model is one new driver: the
interface tests (tests/pump/test_dispenser_interface.py) run against it and the Cavro driver alike. `fail_next`
injects a PumpError into the next dispense; `stop_after_ul` makes the next dispense stop (as a terminate would)
after that volume.
"""

from __future__ import annotations

import threading

from hal.dispenser.base import Dispenser
from hal.dispenser.errors import DispenseTerminated, NotInitialised, PumpError, PumpUsageError, VolumeOutOfRange
from hal.dispenser.protocol import PumpStatus


class InMemoryDispenser(Dispenser):
    """A syringe of `syringe_ul` whose contents are a number; every verb acts at once."""

    def __init__(self, syringe_ul: float = 1000.0) -> None:
        if syringe_ul <= 0:
            raise PumpUsageError(f"syringe_ul must be a positive number, got {syringe_ul!r}")
        self._capacity = float(syringe_ul)
        self.contents_ul = 0.0
        self.initialised = False
        self.rate_ul_s: float | None = None
        self.delivered_total_ul = 0.0
        self.wasted_ul = 0.0
        self.terminates = 0
        self.fail_next: PumpError | None = None
        self.stop_after_ul: float | None = None
        self._lock = threading.Lock()

    @property
    def capacity_ul(self) -> float:
        """The syringe's volume (uL)."""
        return self._capacity

    def identity(self) -> str:
        """Names the double in the record."""
        return f"in-memory dispenser syringe {self._capacity:g} uL"

    def reinitialise(self) -> None:
        """Plunger to the top: anything left goes out through the output (to the waste)."""
        with self._lock:
            self.wasted_ul += self.contents_ul
            self.contents_ul = 0.0
            self.initialised = True

    def _ready(self, what: str) -> None:
        if not self.initialised:
            raise NotInitialised(f"{what}: the dispenser is not initialised")

    def draw(self, volume_ul: float, *, rate_ul_s: float) -> float:
        """Add `volume_ul` to the contents if it fits the syringe."""
        self._ready("draw")
        _volume(volume_ul)
        with self._lock:
            if self.contents_ul + volume_ul > self._capacity + 1e-9:
                free = self._capacity - self.contents_ul
                raise VolumeOutOfRange(f"cannot draw {volume_ul} uL: only {free:.3f} uL of the syringe is free")
            self.contents_ul += volume_ul
            self.rate_ul_s = rate_ul_s
        return float(volume_ul)

    def dispense(self, volume_ul: float, *, rate_ul_s: float | None = None,
                 inhibit: threading.Event | None = None) -> float:
        """Take `volume_ul` from the contents (or less, if stop_after_ul says so)."""
        self._ready("dispense")
        _volume(volume_ul)
        with self._lock:
            if volume_ul > self.contents_ul + 1e-9:
                raise VolumeOutOfRange(f"cannot dispense {volume_ul} uL: the syringe holds {self.contents_ul:.3f} uL")
            if inhibit is not None and inhibit.is_set():
                raise DispenseTerminated(f"dispense of {volume_ul} uL not started: inhibited by an interlock",
                                         delivered_ul=0.0, requested_ul=volume_ul)
            if self.fail_next is not None:
                failure, self.fail_next = self.fail_next, None
                self.initialised = False
                raise failure
            delivered = min(volume_ul, self.stop_after_ul) if self.stop_after_ul is not None else volume_ul
            self.stop_after_ul = None
            self.contents_ul -= delivered
            self.delivered_total_ul += delivered
            self.rate_ul_s = rate_ul_s if rate_ul_s is not None else self.rate_ul_s
        if delivered < volume_ul:
            raise DispenseTerminated(f"dispense of {volume_ul} uL stopped after {delivered:.3f} uL",
                                     delivered_ul=delivered, requested_ul=volume_ul)
        return float(delivered)

    def empty_to_waste(self, *, rate_ul_s: float) -> None:
        """Everything in the syringe goes to the waste."""
        self._ready("empty to waste")
        with self._lock:
            self.wasted_ul += self.contents_ul
            self.contents_ul = 0.0

    def terminate(self) -> None:
        """Nothing runs between calls here: counted only."""
        self.terminates += 1

    def status(self) -> PumpStatus:
        """Always ready; error code 7 (not initialised) until reinitialised."""
        return PumpStatus(ready=True, error_code=0 if self.initialised else 7)

    def volume_in_syringe_ul(self) -> float:
        """The contents (uL)."""
        return self.contents_ul

    def reported_volume_ul(self) -> float | None:
        """The contents (uL): nothing to ask."""
        return self.contents_ul

    def close(self) -> None:
        """Nothing to release."""


def _volume(volume_ul: float) -> None:
    """A positive volume, or PumpUsageError."""
    if isinstance(volume_ul, bool) or not isinstance(volume_ul, (int, float)) or not volume_ul > 0:
        raise PumpUsageError(f"volume must be a positive number of uL, got {volume_ul!r}")
