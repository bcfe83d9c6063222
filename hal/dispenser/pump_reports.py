"""CavroPump's reports: status (Q), plunger position (?, reused while only questions went out), valve, speeds,
firmware, counters and the identity written to the record."""

from __future__ import annotations

from hal.dispenser.errors import ProtocolError
from hal.dispenser.protocol import PumpStatus
from hal.dispenser.pump_host import PumpHost

VALVE_REPORTS = {"i": "input", "o": "output", "b": "bypass", "e": "extra"}


class PumpReports(PumpHost):
    """Mixin of CavroPump (state and the command layer in hal/dispenser/driver.py)."""

    _position_seen: int | None

    @property
    def ul_per_step(self) -> float:  # pragma: no cover - CavroPump's
        """Volume of one plunger step (CavroPump.ul_per_step)."""
        raise NotImplementedError

    def query(self, raise_errors: bool = True) -> PumpStatus:
        """Q: ready/busy and error code; raises the typed error for error bits unless raise_errors is False."""
        return self.command("Q", retry=True, check=raise_errors).status

    def status(self) -> PumpStatus:
        """Q without raising on the error code."""
        return self.query(raise_errors=False)

    def position_steps(self, *, fresh: bool = False) -> int:
        """?: absolute plunger position in steps of the current resolution; the last answer while only questions
        went to the pump since it (`fresh`: always ask)."""
        with self._cmd_lock:
            seen = self._position_seen
            if seen is None or fresh:
                seen = self._report_int("?")
                self._position_seen = seen
            return seen

    def volume_in_syringe_ul(self) -> float:
        """The syringe's contents from the plunger position."""
        return self.position_steps() * self.ul_per_step

    def reported_volume_ul(self) -> float | None:
        """Dispenser.reported_volume_ul: the last `?` answer while only questions went out since; None while an
        exchange is under way on another thread (the lock is not waited for) or when the pump must be asked."""
        if not self._cmd_lock.acquire(blocking=False):
            return None
        try:
            seen = self._position_seen
        finally:
            self._cmd_lock.release()
        return None if seen is None else seen * self.ul_per_step

    def valve_position(self) -> str | int:
        """?6: "input", "output", "bypass", "extra" or a distribution port number."""
        data = self._report("?6")
        if data in VALVE_REPORTS:
            return VALVE_REPORTS[data]
        if data.isdigit():
            return int(data)
        raise ProtocolError(f"answer to '?6' is not a valve position: {data!r}")

    def speeds(self) -> dict[str, int]:
        """?1 ?2 ?3: start, top and cutoff speeds in pulses/s."""
        return {"start": self._report_int("?1"), "top": self._report_int("?2"), "cutoff": self._report_int("?3")}

    def firmware(self) -> str:
        """&: the firmware version string."""
        return self._report("&")

    def counters(self) -> dict[str, int]:
        """?15 ?16 ?17: initialisation, plunger move and valve move counters."""
        return {"init": self._report_int("?15"), "plunger": self._report_int("?16"), "valve": self._report_int("?17")}

    def identity(self) -> str:
        """Model, firmware, address and syringe, for the record."""
        return f"Cavro {self.model} firmware {self.firmware()!r} address {self.address} syringe {self.syringe_ul:g} uL"
