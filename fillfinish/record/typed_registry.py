"""Registry entries read back typed: the folds of master data, people and quality read the vocabulary's models.

`read_registry(store, name)` gives each entry of registry `name` (REG-RECIPES, REG-MATERIALS, ...) as a
`TypedEntry` whose data is its kind's model (fillfinish/record/vocabulary_registries.py); folds dispatch with
`isinstance` and read attributes, never `entry.data["x"]`. The signature manifestation that signed registry entries
carry (a dict in the vocabulary, written by fillfinish.masterdata.signing.signature) is read as a `Signer`.
An entry the vocabulary (or `Signer`) refuses is `Unreadable`; folds skip it, like every typed reader (decision 0023).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from fillfinish.record.models import Entry
from fillfinish.record.registry import registry_entries
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_entries import TypedEntry, Unreadable, of_type, typed_or_unreadable
from fillfinish.record.vocabulary import EntryData

__all__ = ["Signer", "IssuedLot", "signer", "typed_entry", "read_entries", "read_registry", "registry_of_type"]

D = TypeVar("D", bound=EntryData)


class Signer(BaseModel):
    """The signature manifestation of a signed registry entry (21 CFR 11.50): who signed, in which role, meaning."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    user_id: str
    role: str
    meaning: str
    reason: str
    authenticated: bool


class IssuedLot(BaseModel):
    """One material slot of a batch's `master_data` entry (a lot's summary when it was issued): the lot id is read."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    lot: str


def signer(signature: Mapping[str, Any]) -> Signer:
    """The manifestation `signature` as a Signer (ValidationError when it is not one; read_registry checks it)."""
    return Signer.model_validate(dict(signature))


def typed_entry(entry: Entry) -> EntryData:
    """The entry's typed data; `Unreadable` when the vocabulary refuses it or its signature is not a manifestation."""
    data = typed_or_unreadable(entry)
    manifestation = getattr(data, "signature", None)
    if isinstance(manifestation, Mapping) and not isinstance(data, Unreadable):
        try:
            signer(manifestation)
        except ValidationError as exc:
            return Unreadable(problem=f"{entry.kind!r} entry: signature is not a signature manifestation: "
                                      f"{exc.errors()[0]['msg']}")
    return data


def read_entries(entries: Iterable[Entry]) -> list[TypedEntry[EntryData]]:
    """Entries with their typed data (signed ones with a valid manifestation), `Unreadable` when refused."""
    return [TypedEntry(e, typed_entry(e)) for e in entries]


def read_registry(store: RecordStore, name: str, kinds: Iterable[str] | None = None) -> list[TypedEntry[EntryData]]:
    """Registry `name`'s entries (of `kinds`) in write order, read typed; empty when it was never written."""
    return read_entries(registry_entries(store, name, kinds=kinds))


def registry_of_type(store: RecordStore, name: str, model: type[D]) -> list[TypedEntry[D]]:
    """Registry `name`'s entries of one kind (`model.KIND`) typed as `model`; unreadable ones are left out."""
    return of_type(read_registry(store, name, kinds=[model.KIND]), model)
