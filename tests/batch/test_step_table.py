"""The controller is its sequence: one step per phase of Execute, keyed by the phase machine's own phases; the
controller's modules stay small (the shape issue 10 asked for)."""

from __future__ import annotations

import ast
from pathlib import Path

from fillfinish.batch.steps import STEPS
from fillfinish.machine.phases import PHASES, Phase, PhaseSequence

BATCH = Path(__file__).resolve().parents[2] / "fillfinish" / "batch"


def test_every_phase_of_execute_has_its_step() -> None:
    assert set(STEPS) == set(PHASES) - {Phase.post_fill}, "post_fill is the Completing state's"
    for phase, step in STEPS.items():
        assert step.phase == phase


def test_the_next_phase_comes_from_the_phase_table_not_from_the_steps() -> None:
    seq, order = PhaseSequence(), []
    seq.restore(Phase.line_checks, [])
    while seq.next_phase is not None:
        order.append(seq.next_phase)
        seq.restore(seq.next_phase, PHASES[: PHASES.index(seq.next_phase)])
    assert order == list(PHASES[1:])
    for path in (BATCH / "steps").glob("*.py"):
        text = path.read_text()
        assert ".advance(" not in text, f"{path.name} names the next phase itself"


def test_modules_and_functions_stay_small() -> None:
    for path in [*BATCH.glob("*.py"), *(BATCH / "steps").glob("*.py")]:
        text = path.read_text()
        assert len(text.splitlines()) <= 400, f"{path.name}: {len(text.splitlines())} lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                assert length <= 60, f"{path.name}:{node.name} is {length} lines"
