"""A step: what the controller does while the sequence is in one phase. The sequence's own table
(fillfinish/machine/phases.py) says which phase comes next; a step never names it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from fillfinish.machine.phases import Phase

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController


class Step(Protocol):
    """The work of one phase. `run` returns when the phase's work is done (the controller then advances by the
    sequence's table, the guards deciding); `entered` runs right after the sequence entered the phase."""

    phase: Phase

    async def run(self, c: BatchController) -> None:
        """Do the phase's work (raise to hold: DeviceFault, a device error, a UV fault)."""
        ...

    def entered(self, c: BatchController) -> None:
        """Note the phase's start (e.g. the fill start time of Annex 1 8.18)."""
        ...


class LineChecksStep:
    """line_checks: the checks ran in Starting (fillfinish/batch/acting.py); nothing more to do in Execute."""

    phase = Phase.line_checks

    async def run(self, c: BatchController) -> None:
        """Nothing: the checks passed before Execute."""

    def entered(self, c: BatchController) -> None:
        """Nothing to note."""


def _table() -> dict[Phase, Step]:
    """Phase -> step for every phase of Execute (post_fill is the Completing state's, fillfinish/batch/acting.py)."""
    from fillfinish.batch.steps.fill import FillStep
    from fillfinish.batch.steps.prime import PrimeStep
    from fillfinish.batch.steps.uv import TipStep, UvCycleStep

    steps: list[Step] = [LineChecksStep(), UvCycleStep(), TipStep(), PrimeStep(), FillStep()]
    return {s.phase: s for s in steps}


STEPS: dict[Phase, Step] = _table()
"""The controller's sequence: one step object per phase of Execute."""
