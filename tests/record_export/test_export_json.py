"""JSON export: the whole record round-trips (hashes recompute), with the verify result and the review."""

from __future__ import annotations

import json

import pytest

from fillfinish.record import RecordStore
from fillfinish.record.chain import entry_hash, header_hash
from fillfinish.record.export import ExportError, from_json, json_bytes, json_document, load_snapshot


def test_json_round_trips(full_record: tuple[RecordStore, str]) -> None:
    """Header and entries read back from the export equal the store's, and every hash recomputes."""
    store, batch = full_record
    doc = json.loads(json_bytes(load_snapshot(store, batch)).decode("utf-8"))
    header, entries = from_json(doc)
    assert header == store.batch(batch)
    assert entries == store.entries(batch)
    fields = {name: getattr(header, name) for name in ("batch_id", "product", "product_code", "recipe_name",
                                                       "recipe_version", "recipe_hash", "recipe_snapshot", "lot",
                                                       "planned_vials", "operator", "mode", "site_config")}
    fields["created_at"] = doc["batch"]["created_at"]
    assert header_hash(fields) == header.header_hash
    prev = header.header_hash
    for raw, entry in zip(doc["entries"], entries, strict=True):
        assert entry.prev_hash == prev
        assert entry_hash(prev, batch_id=batch, seq=entry.seq, ts=raw["ts"], kind=entry.kind, actor=entry.actor,
                          data=entry.data) == entry.hash
        prev = entry.hash


def test_json_includes_verify_result_and_review(full_record: tuple[RecordStore, str]) -> None:
    """The export carries the integrity check (batch chain and ledger) and the review by exception."""
    store, batch = full_record
    doc = json_document(load_snapshot(store, batch))
    n = len(store.entries(batch))
    assert doc["integrity"]["ok"] is True and doc["integrity"]["entries_checked"] == n
    assert doc["integrity"]["problem"] is None and doc["integrity"]["ledger"]["ok"] is True
    assert doc["review"]["disposition"]["suitable"] is False
    assert doc["review"]["exception_counts"]["deviation"] == 1
    assert doc["export"]["format"] == "fillfinish-batch-record-export/1"


def test_json_reports_tampering(clean_record: tuple[RecordStore, str], tamper: object) -> None:
    """A tampered record exports with ok false and the first problem named."""
    store, batch = clean_record
    tamper(store, "UPDATE entry SET data = '{}' WHERE batch_id = :b AND seq = 3", b=batch)  # type: ignore[operator]
    doc = json_document(load_snapshot(store, batch))
    assert doc["integrity"]["ok"] is False and doc["integrity"]["problem"].startswith("entry 3")


def test_from_json_refuses_other_documents() -> None:
    """A document that is not a record export gives ExportError naming the missing field."""
    with pytest.raises(ExportError, match="batch"):
        from_json({"entries": []})
