"""What the controller shows and accepts from the outside (OPC UA server, HMI, CLI): one small interface.

The batch controller implements `ControllerView`; the OPC UA server and the HMI depend only on this protocol, so they
can be built and tested against a test double without hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class AlarmView:
    """One alarm as shown to people: id, severity (alert | action | interlock | fault), text, UTC ISO time."""

    alarm_id: int
    severity: str
    source: str
    message: str
    time: str
    acknowledged: bool = False
    acknowledged_by: str | None = None


@dataclass(frozen=True)
class StatusView:
    """A snapshot of the machine for tags and screens (PackML numbers, counts, phase, first-out stop reason)."""

    state: int  # PackML StateCurrent
    state_name: str
    unit_mode: int  # 1 Production, 2 Maintenance, 3 Manual, 4 Media fill (APS)
    batch_id: str | None
    product: str | None
    phase: str | None
    planned: int = 0
    processed: int = 0  # ProdProcessedCount: vials filled and accepted
    defective: int = 0  # ProdDefectiveCount: vials rejected
    uv_dose_mj_cm2: float = 0.0
    stop_reason: str = ""
    valid_commands: tuple[str, ...] = ()
    alarms: tuple[AlarmView, ...] = field(default_factory=tuple)
    environment: dict[str, float] = field(default_factory=dict)  # latest particles, dp, downflow
    # the batch recipe's limits per environment value: name -> (low or None, high or None), same units
    environment_limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    hold_cause: str = ""  # while Held/Holding: the alarm or system cause ("" after a person's Hold)
    uv_target_mj_cm2: float = 0.0  # the recipe's UV-C target dose at the reference point


class ControllerView(Protocol):
    """The controller as seen by the OPC UA server and the HMI."""

    def status(self) -> StatusView:
        """The current snapshot (cheap; called at the tag update rate)."""
        ...

    async def command(self, command: str, actor: str, reason: str = "", signature: dict | None = None) -> str:
        """Issue a PackML command by name (Reset, Start, Stop, Hold, Unhold, Suspend, Unsuspend, Abort, Clear,
        Complete) as the authenticated `actor`; `signature` (meaning, name, authenticated) when the person signed it;
        returns the new state name, raises fillfinish.machine.packml.CommandRefused when not valid."""
        ...

    async def acknowledge(self, alarm_id: int, actor: str) -> None:
        """Acknowledge an alarm (recorded with the person)."""
        ...
