"""What a run is given (the tip lot) and what it reports (the outcome), as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from fillfinish.batch.disposition import Disposition


@dataclass
class TipLot:
    """A pre-sterilised dispensing-tip lot: its sterilisation cycle id and expiry (ISO date)."""

    lot: str
    sterilisation_cycle_id: str
    expiry: str


@dataclass
class BatchOutcome:
    """What a finished run reports to its caller."""

    batch_id: str
    state: str
    disposition: Disposition | None
    accepted: int = 0
    rejected: int = 0
    uncertain: int = 0
    uv_dose_mj_cm2: float = 0.0
    tip_dose_mj_cm2: float = 0.0
    excursions: list[str] = field(default_factory=list)
    message: str = ""


ProgressFn = Callable[[str, float, float], None]
"""progress(what, done, total): shown by the CLI and the console while the run goes on."""
