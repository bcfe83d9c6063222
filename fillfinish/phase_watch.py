"""Watch what must not change during a batch: PLC state that contradicts the phase is an interlock alarm.

The environmental monitor judges air and faults; this watch judges the machine against what the controller itself
commanded: the UV lamp on outside the UV steps (a write of the lamp command by someone else shows here, through the
lamp feedback), the door unlocked after it was locked, the positioner sent to a target the controller did not
command, and the PLC's own watchdog or alarm latching. Each becomes an interlock alarm; the controller makes the line
safe (lamp off, dispense terminated) and holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import structlog

from fillfinish.clock import Clock
from fillfinish.monitor import Alarm

log = structlog.get_logger("fillfinish.phase_watch")
LAMP_OFF_SOURCES = frozenset({"lamp_unexpected", "plc_watchdog"})  # alarms after which the lamp is switched off


class PhaseWatch:
    """Subscribed-signal watch of a running batch; `problems()` lists the contradictions still in force."""

    def __init__(self, plc: Any, clock: Clock, *, lamp_allowed: Callable[[], bool],
                 commanded_targets: Callable[[], Sequence[int]], on_alarm: Callable[[Alarm], None]) -> None:
        """`commanded_targets()`: the positioner targets this controller sent lately (empty before its first move)."""
        self.plc = plc
        self.clock = clock
        self.lamp_allowed = lamp_allowed
        self.commanded_targets = commanded_targets
        self.on_alarm = on_alarm
        self.active: dict[str, str] = {}
        self._last: dict[str, Any] = {}
        self._unregister: Callable[[], None] | None = None

    def start(self) -> None:
        """Take the current values as the baseline (no alarm for them) and watch every change from now on."""
        self._last = {name: sample.value for name, sample in self.plc.snapshot().items()}
        self._unregister = self.plc.on_change(self._changed)

    async def stop(self) -> None:
        """Stop watching (nothing of the watch's own is left running: every judgement is made in the callback)."""
        if self._unregister is not None:
            self._unregister()
            self._unregister = None

    def problems(self) -> list[str]:
        """Contradictions still in force (Unhold is refused while any is)."""
        return list(self.active.values())

    def _raise(self, source: str, message: str, value: Any, limit: Any, *, lasting: bool = True) -> None:
        """Report an interlock alarm; `lasting` ones stay in problems() until the condition clears."""
        if lasting:
            self.active[source] = message
        log.warning("phase_watch.alarm", source=source, message=message)
        self.on_alarm(Alarm("interlock", source, message, value, limit, self.clock.now()))

    def _changed(self, signal: str, value: Any, _timestamp: Any) -> None:
        """Judge one subscribed change against what the controller commanded."""
        before = self._last.get(signal)
        self._last[signal] = value
        if signal == "lamp_on":
            if value and not before and not self.lamp_allowed():
                self._raise("lamp_unexpected", "UV lamp on outside the UV steps (lamp command written by someone "
                            "else?)", True, False)
            elif not value:
                self.active.pop("lamp_unexpected", None)
        elif signal == "door_locked":
            if before and not value:
                self._raise("door_unlocked", "enclosure door unlocked during the batch", False, True)
            elif value:
                self.active.pop("door_unlocked", None)
        elif signal == "watchdog_tripped":
            if value and not before:
                self._raise("plc_watchdog", "the PLC's watchdog tripped: it lost this controller's heartbeat and "
                            "made the line safe", True, False)
            elif not value:
                self.active.pop("plc_watchdog", None)
        elif signal == "plc_alarm":
            if value and value != before:
                self._raise("plc_alarm", f"PLC alarm: {value}", value, "", lasting=False)
        elif signal == "positioner_target":
            self._check_target(value)

    def _check_target(self, target: Any) -> None:
        """A new positioner target (subscribed, so no read per move): one this controller sent, or someone else's.
        The notification may come after the controller's next command, so any of its recent targets is its own."""
        wanted = self.commanded_targets()
        if not wanted:
            return  # no move of ours yet: the batch has not taken the positioner
        if target not in wanted:
            last = wanted[-1]
            self._raise("positioner_unexpected", f"vial positioner sent to {target} without a command from this "
                        f"controller (last commanded {last})", target, last, lasting=False)
