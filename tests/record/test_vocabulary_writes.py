"""Every write is validated against the record vocabulary: the store and the registries refuse undeclared kinds and
fields with a clear error, and nothing is written."""

from __future__ import annotations

import pytest

from fillfinish.record.registry import append_registry, registry_entries
from fillfinish.record.store import RecordStore, RecordWriteError
from fillfinish.record.vocabulary import VocabularyError


def _batch(store: RecordStore) -> str:
    """A batch header to write to."""
    return store.create_batch(product="p", product_code="c", recipe_name="r", recipe_version="1", recipe_hash="h",
                              recipe_snapshot="s", lot="L", planned_vials=1, operator="op", mode="production",
                              site_config={})


def test_store_append_refuses_an_undeclared_kind_and_writes_nothing(db_url: str) -> None:
    with RecordStore(db_url) as store:
        batch = _batch(store)
        with pytest.raises(RecordWriteError, match=r"unknown entry kind 'note'; allowed: .*vial") as caught:
            store.append(batch, "note", {"text": "hello"}, "op")
        assert isinstance(caught.value.__cause__, VocabularyError)
        assert store.entries(batch) == []


def test_store_append_refuses_an_undeclared_field_naming_the_allowed_ones(db_url: str) -> None:
    with RecordStore(db_url) as store:
        batch = _batch(store)
        with pytest.raises(RecordWriteError, match=r"'vial' entry: weight_g: not a field of 'vial'; allowed: vial, "
                                                   r"status, reason"):
            store.append(batch, "vial", {"vial": 1, "status": "accepted", "reason": "ok", "weight_g": 0.1}, "op")
        with pytest.raises(RecordWriteError, match=r"'vial' entry: status"):
            store.append(batch, "vial", {"vial": 1, "status": "filled", "reason": "ok"}, "op")
        assert store.entries(batch) == []
        store.append(batch, "vial", {"vial": 1, "status": "accepted", "reason": "ok"}, "op")  # the store stays usable
        assert store.verify(batch).ok


def test_a_registry_write_of_an_undeclared_kind_or_field_is_refused(db_url: str) -> None:
    with RecordStore(db_url) as store:
        with pytest.raises(RecordWriteError, match=r"unknown entry kind 'recipe_deleted'"):
            append_registry(store, "recipes", "recipe_deleted", {"name": "fgf2"}, "q.approver")
        with pytest.raises(RecordWriteError, match=r"'legal_hold' entry: until: not a field of 'legal_hold'"):
            append_registry(store, "purge", "legal_hold", {"batch_id": "B-1", "event": "placed", "reason": "audit",
                                                           "until": "2030-01-01"}, "q.approver")
        assert registry_entries(store, "purge") == []
        append_registry(store, "purge", "legal_hold", {"batch_id": "B-1", "event": "placed", "reason": "audit"},
                        "q.approver")
        assert [e.kind for e in registry_entries(store, "purge")] == ["legal_hold"]
