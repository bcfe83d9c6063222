"""The one-pass verify (decision 0024): the per-kind canonical patterns answer exactly as the exact test, an intact
record is shown intact without the full check, and tampering the pass alone could miss still goes to the full check."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillfinish.record import RecordStore
from fillfinish.record import verify_parallel, verify_scan
from fillfinish.record.chain import canonical_text
from fillfinish.record.verify import verify
from fillfinish.record.verify_canon import CanonicalShapes
from fillfinish.record.verify_onepass import RangeScan
from record_helpers import fill, new_batch, tamper

SHAPE = '{"a":1,"b":"x","c":0.5,"d":true}'
"""A flat canonical text the patterns learn first; the tricky texts below have its keys."""

TRICKY = [
    SHAPE, '{"a":-0,"b":"x","c":0.5,"d":true}', '{"a":01,"b":"x","c":0.5,"d":true}',
    '{"a":1,"b":"x","c":0.50,"d":true}', '{"a":1,"b":"x","c":1.0,"d":true}', '{"a":1,"b":"x","c":1,"d":true}',
    '{"a":1,"b":"x","c":1e5,"d":true}', '{"a":1,"b":"x","c":1e+16,"d":true}', '{"a":1,"b":"x","c":1E+16,"d":true}',
    '{"a":1,"b":"x","c":100000.0,"d":true}', '{"a":1,"b":"x","c":0.30000000000000004,"d":true}',
    '{"a":1,"b":"x","c":-0.0,"d":true}', '{"a":1,"b":"x","c":-0,"d":true}', '{"a":1,"b":"x","c":NaN,"d":true}',
    '{"a":1,"b":"x","c":Infinity,"d":true}', '{"a":12345678901234567890,"b":"x","c":0.5,"d":true}',
    '{"a":1,"b":"\\u00e9","c":0.5,"d":true}', '{"a":1,"b":"é","c":0.5,"d":true}', '{"a":1,"b":"x\\ty","c":0.5,"d":true}',
    '{"a":1,"b":"x\ty","c":0.5,"d":true}', '{"a":1,"b":"x\\"y","c":0.5,"d":true}', '{"a":1,"b":"\\/","c":0.5,"d":true}',
    '{"a":1, "b":"x","c":0.5,"d":true}', '{"b":"x","a":1,"c":0.5,"d":true}', '{"a":1,"a":2,"b":"x","c":0.5,"d":true}',
    '{"a":1,"b":"x","c":0.5,"d":True}', '{"a":1,"b":"x","c":0.5,"d":null}', '{"a":1,"b":"x","c":0.5}',
    '{"a":1,"b":"x","c":0.5,"d":true} ', '{"a":1,"b":"x","c":0.5,"d":[]}', '{"a":1,"b":"\u2028","c":0.5,"d":true}',
    '{"a":1,"b":"\x7f","c":0.5,"d":true}', '{"a":1,"b":"x","c":5e-324,"d":true}', '{"a":1,"b":"x","c":1e-05,"d":true}',
]


@pytest.mark.parametrize("text", TRICKY)
def test_patterns_answer_as_the_exact_test(text: str) -> None:
    """After learning the shape, each tricky text is canonical for the patterns exactly when it is for the exact
    test (twice: the float memo must not change the answer)."""
    shapes = CanonicalShapes()
    assert shapes.is_canonical("vial", SHAPE)
    for _ in range(2):
        assert shapes.is_canonical("vial", text) == (canonical_text(text) == text), text


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**20, max_value=10**20),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))


@settings(max_examples=300, deadline=None)
@given(values=st.dictionaries(st.text(max_size=4), _SCALARS, max_size=5), spacing=st.sampled_from(["", " "]),
       mutate=st.integers(min_value=0, max_value=6))
def test_patterns_agree_on_generated_texts(values: dict[str, Any], spacing: str, mutate: int) -> None:
    """Canonical texts and small mutations of them (number forms, escapes, spaces, key order) get the exact
    test's answer from a learner that has seen the canonical form's shape."""
    shapes = CanonicalShapes()
    text = canonical_text(json.dumps(values))
    assert text is not None
    assert shapes.is_canonical("k", text)
    variants = [text, json.dumps(values, separators=(",", ":" + spacing)), json.dumps(values, sort_keys=True),
                json.dumps(values, sort_keys=True, separators=(",", ":")),
                json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True),
                text.replace(".0,", ".00,").replace("0.", "0.0"), text.replace("e+", "e").replace(":0", ":-0")]
    for variant in variants[: mutate + 1]:
        assert shapes.is_canonical("k", variant) == (canonical_text(variant) == variant), variant


def _record(store: RecordStore) -> tuple[str, str]:
    """Two batches interleaved in the ledger."""
    a, b = new_batch(store), new_batch(store, lot="L-2")
    fill(store, a, 3)
    fill(store, b, 2)
    fill(store, a, 2, start=3)
    return a, b


def test_intact_record_needs_no_full_check(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """An intact record is intact from the one pass alone: no batch goes to the full check, no line is walked
    again (in one process and over two workers)."""
    _record(store)
    again: list[Any] = []
    monkeypatch.setattr(verify_parallel, "check_named", lambda conn, dialect, key, ids: again.extend(ids) or {})
    monkeypatch.setattr(verify_scan, "_check_line", lambda *args: again.append(args[3]))
    assert verify(store).ok
    assert again == []


ENTRY_TAMPERING: dict[str, tuple[list[str], bool]] = {
    "entry global_seq changed": (["UPDATE entry SET global_seq = global_seq + 1000 WHERE batch_id = :b AND seq = 2"],
                                 True),
    "two entries' global_seqs exchanged": ([
        "UPDATE entry SET global_seq = -global_seq WHERE batch_id = :b AND seq IN (1, 2)",
        "UPDATE entry SET global_seq = -global_seq + 1 WHERE batch_id = :b AND seq = 1",
        "UPDATE entry SET global_seq = -global_seq - 1 WHERE batch_id = :b AND seq = 2"], True),
    "entry moved to the header's global_seq": ([
        "UPDATE entry SET global_seq = (SELECT global_seq FROM ledger WHERE batch_id = :b AND seq = 0) "
        "WHERE batch_id = :b AND seq = 1"], True),
    "entry appended without a ledger row": ([
        "INSERT INTO entry (batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash) SELECT batch_id, 6, "
        "global_seq + 1000, ts, kind, actor, data, hash, hash FROM entry WHERE batch_id = :b AND seq = 5"], False),
}
"""Tampering of entry rows' global_seq (which the full check does not read) and an entry with no ledger row: SQL,
and whether the full check still finds the record intact."""


@pytest.mark.parametrize("scenario", sorted(ENTRY_TAMPERING))
def test_entry_rows_out_of_place_get_the_full_check(store: RecordStore, monkeypatch: pytest.MonkeyPatch,
                                                     scenario: str) -> None:
    """Entry rows whose global_seq no longer pairs them with their ledger row: the report is the full check's, in
    one process and over two workers (the full check pairs entries with the ledger by batch and seq)."""
    import importlib

    a, _b = _record(store)
    statements, intact = ENTRY_TAMPERING[scenario]
    tamper(store, *[(sql, {"b": a}) for sql in statements])
    fast = verify(store).lines()
    with monkeypatch.context() as patch:
        patch.setattr(verify_parallel, "scan_range", lambda *args: RangeScan())
        full = verify(store).lines()
    monkeypatch.setattr(importlib.import_module("fillfinish.record.verify"), "PARALLEL_MIN_ROWS", 0)
    parallel = verify(store, jobs=2).lines()
    assert fast == full == parallel, scenario
    assert (not any("NOT INTACT" in line for line in fast)) == intact, fast
