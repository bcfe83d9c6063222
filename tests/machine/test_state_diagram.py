"""The committed docs/state-diagram.md is exactly what the generator draws from the transition tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fillfinish.machine.diagram import mermaid, packml_mermaid, phase_mermaid
from fillfinish.machine.packml import STATE_COMPLETE, TRANSITIONS, State
from fillfinish.machine.phases import FINISHED, NOT_STARTED, PHASE_TRANSITIONS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "state-diagram.md"


def test_committed_doc_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == mermaid(), (
        "docs/state-diagram.md is stale: run `python -m fillfinish.machine.diagram > docs/state-diagram.md`"
    )


def test_module_prints_the_doc() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "fillfinish.machine.diagram"], capture_output=True, text=True, check=True, cwd=ROOT,
        timeout=60,
    )
    assert out.stdout == mermaid()


def test_every_packml_transition_is_drawn() -> None:
    text = packml_mermaid()
    lines = text.splitlines()
    for state in State:
        assert f'state "{state.name} ({state.value})" as {state.name}' in text
    for trigger, sources, dest in TRANSITIONS:
        label = "SC" if trigger == STATE_COMPLETE else trigger
        starts = [f"{trigger}From"] if len(sources) > 3 else [s.name for s in sources]
        for start in starts:
            edge = [ln for ln in lines if ln.strip().startswith(f"{start} --> {dest.name} : ")]
            assert len(edge) == 1 and label in edge[0].split(" : ")[1].split(" / ")


def test_every_phase_transition_is_drawn() -> None:
    lines = phase_mermaid().splitlines()
    for trigger, sources, dest, _ in PHASE_TRANSITIONS:
        for source in sources:
            a = "[*]" if source == NOT_STARTED else source
            b = "[*]" if dest == FINISHED else dest
            assert any(ln.strip().startswith(f"{a} --> {b} : {trigger}") for ln in lines)
