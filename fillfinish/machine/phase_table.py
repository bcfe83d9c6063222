"""The phase table: the batch phases in order and the one explicit table of their transitions and guards.

PhaseSequence (phases.py) builds its `transitions.Machine` from PHASE_TRANSITIONS and diagram.py draws it.
"""

from __future__ import annotations

import enum

from fillfinish.machine.phase_guards import FILL_GUARDS


class Phase(enum.StrEnum):
    """The batch phases, in their enforced order."""

    line_checks = "line_checks"
    uv_cycle = "uv_cycle"
    tip_sterilisation = "tip_sterilisation"
    prime = "prime"
    fill = "fill"
    post_fill = "post_fill"


PHASES: tuple[Phase, ...] = tuple(Phase)
"""The phases in sequence order."""

NOT_STARTED = "not_started"
"""Sequence state before line_checks (machine-table name, not a Phase)."""

FINISHED = "finished"
"""Sequence state after post_fill (machine-table name, not a Phase)."""

REPEATABLE: frozenset[Phase] = frozenset({Phase.uv_cycle, Phase.tip_sterilisation})
"""Phases that may be repeated after a hold-time expiry."""


PhaseRow = tuple[str, tuple[str, ...], str, tuple[str, ...]]

PHASE_TRANSITIONS: list[PhaseRow] = [
    (Phase.line_checks.value, (NOT_STARTED,), Phase.line_checks.value, ()),
    (Phase.uv_cycle.value, (Phase.line_checks.value,), Phase.uv_cycle.value, ("line_checks_ok",)),
    (Phase.tip_sterilisation.value, (Phase.uv_cycle.value,), Phase.tip_sterilisation.value, ("uv_dose_reached",)),
    (Phase.prime.value, (Phase.tip_sterilisation.value,), Phase.prime.value, FILL_GUARDS),
    (Phase.fill.value, (Phase.prime.value,), Phase.fill.value, FILL_GUARDS),
    (Phase.post_fill.value, (Phase.fill.value,), Phase.post_fill.value, ()),
    ("finish", (Phase.post_fill.value,), FINISHED, ()),
    (
        "repeat_uv_cycle",
        (Phase.uv_cycle.value, Phase.tip_sterilisation.value, Phase.prime.value),
        Phase.uv_cycle.value,
        (),
    ),
    (
        "repeat_tip_sterilisation",
        (Phase.tip_sterilisation.value, Phase.prime.value),
        Phase.tip_sterilisation.value,
        (),
    ),
]
"""The whole sequence: (trigger, source states, destination, guard names). States are Phase values plus
NOT_STARTED and FINISHED."""

SEQUENCE_STATES: tuple[str, ...] = (NOT_STARTED, *(p.value for p in PHASES), FINISHED)
"""Every state of the sequence machine, in order."""


def parse_phase(value: Phase | str) -> Phase:
    """Phase or its name -> Phase; a clear ValueError naming the allowed phases otherwise."""
    try:
        return Phase(value)
    except ValueError:
        raise ValueError(f"unknown phase {value!r}; phases are {phase_names(list(PHASES))}") from None


def phase_names(phases: list[Phase]) -> str:
    """'[a, b]' for messages."""
    return "[" + ", ".join(p.value for p in phases) + "]"
