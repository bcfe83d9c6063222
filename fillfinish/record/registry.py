"""Registries: append-only, hash-chained audit trails of master data kept beside the batches in the same record.

A registry (recipes, users, training, materials, cleaning, deviations, ...) is a header of mode `registry` with id
`REG-NAME` and a chain of entries, so every change of master data is a committed entry with who, when, what (old and
new values in its data) and is covered by the ledger and `fillfinish record verify` like any batch entry. The current
state of a piece of master data is the fold of its registry's entries; modules own their own entry kinds and fold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fillfinish.record.models import Entry
from fillfinish.record.store import RecordStore

__all__ = ["registry_id", "ensure_registry", "append_registry", "registry_entries"]


def registry_id(name: str) -> str:
    """The header id of registry `name` (e.g. `recipes` -> `REG-RECIPES`)."""
    return f"REG-{name.upper()}"


def ensure_registry(store: RecordStore, name: str) -> str:
    """Create registry `name` if it does not exist yet and return its header id."""
    return store.create_registry(name)


def append_registry(store: RecordStore, name: str, kind: str, data: Mapping[str, Any], actor: str) -> Entry:
    """Append one committed, hash-chained entry to registry `name` (created on first use)."""
    return store.append(ensure_registry(store, name), kind, data, actor)


def registry_entries(store: RecordStore, name: str, kinds: Iterable[str] | None = None) -> list[Entry]:
    """The entries of registry `name` in write order (empty when the registry was never written)."""
    from fillfinish.record.store import UnknownBatchError

    try:
        return store.entries(registry_id(name), kinds=kinds)
    except UnknownBatchError:
        return []
