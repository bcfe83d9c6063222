"""What CavroPump's mixins (pump_setup, pump_reports) use of the pump: its state and its command layer."""

from __future__ import annotations

import threading
from typing import Callable

from hal.dispenser.protocol import PumpStatus, Reply


class PumpHost:
    """Declarations only: CavroPump (hal/dispenser/driver.py) sets these and defines the command layer."""

    address: str
    model: str
    syringe_ul: float
    resolution: str
    top_speed: int
    _cmd_lock: threading.RLock
    command: Callable[..., Reply]
    _report: Callable[[str], str]
    _report_int: Callable[[str], int]
    wait_ready: Callable[..., PumpStatus]
