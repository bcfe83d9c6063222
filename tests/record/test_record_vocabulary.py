"""The record vocabulary: one typed definition per entry kind; unknown kinds and fields refused; the generated data
dictionary (docs/record-vocabulary.md) equal to the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fillfinish.batch.recorder import BatchRecorder, RecordFailure
from fillfinish.record.store import RecordStore
from fillfinish.record.vocabulary import VOCABULARY, PhaseEvent, VocabularyError, data_dictionary, typed, validate_entry

ROOT = Path(__file__).resolve().parents[2]


def test_the_data_dictionary_in_docs_is_generated_from_the_code() -> None:
    doc = (ROOT / "docs" / "record-vocabulary.md").read_text(encoding="utf-8")
    assert doc == data_dictionary(), "regenerate: python -m fillfinish.record.vocabulary > docs/record-vocabulary.md"
    out = subprocess.run([sys.executable, "-m", "fillfinish.record.vocabulary"], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out == doc


def test_every_kind_has_a_meaning_and_every_field_a_description() -> None:
    for kind, model in VOCABULARY.items():
        assert model.KIND == kind and model.MEANING, kind
        for name, field in model.model_fields.items():
            assert field.description, f"{kind}.{name} has no description"


def test_unknown_kind_and_unknown_field_are_refused_with_what_is_allowed() -> None:
    with pytest.raises(VocabularyError, match=r"unknown entry kind 'note'; allowed: access_refused, account, alarm"):
        validate_entry("note", {})
    with pytest.raises(VocabularyError, match=r"t: not a field of 'phase'; allowed: phase, event, reason"):
        validate_entry("phase", {"phase": "fill", "event": "start", "t": 12.0})
    with pytest.raises(VocabularyError, match=r"event"):
        validate_entry("phase", {"phase": "fill", "event": "begun"})


def test_entries_read_back_typed(tmp_path: Path) -> None:
    with RecordStore(f"sqlite:///{tmp_path / 'r.db'}") as store:
        batch = store.create_batch(product="p", product_code="c", recipe_name="r", recipe_version="1",
                                   recipe_hash="h", recipe_snapshot="s", lot="L", planned_vials=1, operator="op",
                                   mode="production", site_config={})
        rec = BatchRecorder(store, batch)
        rec.write("phase", phase="fill", event="start")
        rec.write("state", **{"from": "Execute", "to": "Holding", "trigger": "Hold", "reason": "check"})
        phase, state = (typed(e) for e in store.entries(batch))
        assert isinstance(phase, PhaseEvent) and phase.phase == "fill"
        assert state.from_ == "Execute" and state.to == "Holding"  # type: ignore[attr-defined]


def test_the_controllers_pen_refuses_an_undeclared_field_and_stays_usable(tmp_path: Path) -> None:
    with RecordStore(f"sqlite:///{tmp_path / 'r.db'}") as store:
        batch = store.create_batch(product="p", product_code="c", recipe_name="r", recipe_version="1",
                                   recipe_hash="h", recipe_snapshot="s", lot="L", planned_vials=1, operator="op",
                                   mode="production", site_config={})
        rec = BatchRecorder(store, batch)
        with pytest.raises(RecordFailure, match="not a field of 'phase'"):
            rec.write("phase", phase="fill", event="start", t=1.0)
        assert store.entries(batch) == []
        rec.write("phase", phase="fill", event="start")
        assert len(store.entries(batch)) == 1
