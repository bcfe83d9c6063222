"""Registries: master-data audit trails in the record, chained and verified like batches, hidden from batch lists."""

from __future__ import annotations

import pytest

from fillfinish.record.registry import append_registry, registry_entries, registry_id
from fillfinish.record.store import RecordStore, RecordWriteError


def test_registry_entries_are_chained_verified_and_not_batches(db_url: str) -> None:
    with RecordStore(db_url) as store:
        assert registry_entries(store, "recipes") == []
        sig = {"name": "A", "user_id": "a.author", "role": "author", "meaning": "authored", "reason": "",
               "authenticated": True}
        append_registry(store, "recipes", "recipe_imported", {
            "name": "fgf2", "version": 1, "sha256": "ab" * 32, "text": "[recipe]", "mode": "production",
            "product_code": "FGF2", "source": "fgf2.toml", "author": "a.author", "signature": sig}, "a.author")
        second = append_registry(store, "recipes", "recipe_approved", {
            "name": "fgf2", "version": 1, "sha256": "ab" * 32, "effective_from": "2026-11-25",
            "old": {"status": "draft"}, "new": {"status": "approved"}, "signature": sig}, "q.approver")
        assert second.batch_id == registry_id("recipes") == "REG-RECIPES"
        assert second.seq == 2
        assert [e.kind for e in registry_entries(store, "recipes")] == ["recipe_imported", "recipe_approved"]
        assert store.batches() == []
        assert [h.mode for h in store.batches(include_registries=True)] == ["registry"]
        assert store.verify().ok


def test_registry_mode_is_not_a_batch_mode(db_url: str) -> None:
    with RecordStore(db_url) as store:
        with pytest.raises(RecordWriteError, match="mode must be one of production, media_fill"):
            store.create_batch(product="p", product_code="c", recipe_name="r", recipe_version="1", recipe_hash="h",
                               recipe_snapshot="s", lot="L", planned_vials=1, operator="o", mode="registry",
                               site_config={})
        with pytest.raises(RecordWriteError, match="registry name"):
            store.create_registry("Bad Name")
