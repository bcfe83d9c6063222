"""Media-fill outcome: pass only with zero growth and every unit accounted for; the result goes into the batch's chain
and into registry `mediafill` exactly as the master-data checks read it."""

from __future__ import annotations

import datetime as dt

import pytest

from fillfinish.people import UserStore
from fillfinish.quality.common import QualityRefused
from fillfinish.quality.mediafill import record_result
from fillfinish.record import RecordStore
from fillfinish.record.registry import registry_entries
from quality_helpers import PASSWORDS, run_batch


def _result(store: RecordStore, users: UserStore, batch: str, **kw: object):  # type: ignore[no-untyped-def]
    args = {"incubated": 3, "growth": 0, "not_incubated": 0, "justification": "", "reader": "olga",
            "reader_password": PASSWORDS["olga"], "verifier": "sam", "verifier_password": PASSWORDS["sam"]} | kw
    return record_result(store, batch, users=users, **args)  # type: ignore[arg-type]


def test_a_media_fill_with_one_positive_unit_fails(store: RecordStore, users: UserStore) -> None:
    """One turbid unit of three: failed, in the batch chain (signed by reader and verifier) and in REG-MEDIAFILL."""
    batch = run_batch(store, mode="media_fill", operator="olga")
    out = _result(store, users, batch, growth=1)
    assert not out.passed and "1 unit(s) with growth" in out.result.data["reasons"][0]
    assert out.reader_signature.data["meaning"] == "performed" and out.verifier_signature.data["meaning"] == "reviewed"
    (entry,) = registry_entries(store, "mediafill")
    assert entry.kind == "mediafill_result"
    assert set(entry.data) == {"batch_id", "line_id", "passed", "operators", "result_at"}
    assert entry.data["batch_id"] == batch and entry.data["line_id"] == "line-7" and entry.data["passed"] is False
    assert entry.data["operators"] == ["olga"]
    assert dt.datetime.fromisoformat(entry.data["result_at"]).utcoffset() == dt.timedelta(0)
    with pytest.raises(QualityRefused, match="already recorded"):
        _result(store, users, batch)
    assert store.verify().ok


def test_zero_growth_and_every_unit_accounted_passes(store: RecordStore, users: UserStore) -> None:
    """3 filled = 2 incubated + 1 not incubated (justified), no growth: passed."""
    batch = run_batch(store, mode="media_fill")
    out = _result(store, users, batch, incubated=2, not_incubated=1, justification="cracked vial, not integral")
    assert out.passed and registry_entries(store, "mediafill")[0].data["passed"] is True


def test_units_not_accounted_for_fail(store: RecordStore, users: UserStore) -> None:
    """2 incubated of 3 filled and none declared: not accounted, failed even without growth."""
    batch = run_batch(store, mode="media_fill")
    out = _result(store, users, batch, incubated=2)
    assert not out.passed and "not accounted for" in out.result.data["reasons"][0]


def test_media_fill_refusals(store: RecordStore, users: UserStore) -> None:
    """A production batch, reader = verifier, units not incubated without justification, growth > incubated."""
    production = run_batch(store)
    with pytest.raises(QualityRefused, match="not a media fill"):
        _result(store, users, production)
    batch = run_batch(store, mode="media_fill")
    with pytest.raises(QualityRefused) as refused:
        _result(store, users, batch, verifier="sam", reader="sam", reader_password=PASSWORDS["sam"], not_incubated=1,
                growth=5)
    text = str(refused.value)
    assert "two different people" in text and "need a justification" in text and "exceed units incubated" in text
    assert registry_entries(store, "mediafill") == []
