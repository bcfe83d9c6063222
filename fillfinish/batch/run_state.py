"""The facts one run carries between its steps (times, flags, the interlock's inhibit), in one place the steps,
the alarm handling and the safe-state component share."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

from fillfinish.batch.uv_cycle import UvResult


@dataclass
class RunState:
    """Mutable state of one run; times are the shared clock's Unix seconds."""

    inhibit: threading.Event = field(default_factory=threading.Event)
    """Set by an interlock: no dispense may start until a person unholds (the pump driver checks it before D)."""
    dispensing: bool = False
    lamp_allowed: bool = False  # True only inside a UV step (the phase watch alarms on a lamp on otherwise)
    lamp_off_confirmed: bool = True  # set only by a read of the lamp feedback after "off"
    commanded_target: int | None = None  # the positioner target this controller last sent
    commanded_targets: collections.deque[int] = field(default_factory=lambda: collections.deque(maxlen=8))
    """The last positioner targets this controller sent (a Target change notified late may be any of them)."""
    hold_cause: str | None = None
    stop_signal: str | None = None
    """Set by SIGTERM/SIGINT (`shutdown_now`): the next safe point ends the run as the signal's cancel would, even if
    that cancel was swallowed (Python 3.11 can lose a cancel that lands while `asyncio.wait_for` completes)."""
    uv_end: float | None = None
    tips_done: float | None = None
    fill_start: float | None = None
    uv: dict[str, UvResult] = field(default_factory=dict)
    uv_live: float = 0.0  # mJ/cm2 of the UV cycle under way (console, OPC UA tags)
    consecutive_rejects: int = 0
    line_checks_ok: bool = False
    pump_needs_init: bool = False  # after a terminate, a pump fault or a restart
