"""Entries read back typed: each record entry with its data as its kind's vocabulary model.

Consumers (history, review, PDF, plots, BatchML, release) read `TypedEntry.data` attributes, never `entry.data["x"]`
strings, so a renamed or removed field fails at type-check and test time instead of silently in an export.
`tests/record/test_typed_consumers.py` keeps it that way (no string-keyed reads of entry data in consumers).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from fillfinish.record.models import Entry
from fillfinish.record.vocabulary import EntryData, typed

__all__ = ["TypedEntry", "read_typed", "of_type"]

D = TypeVar("D", bound=EntryData)


@dataclass(frozen=True)
class TypedEntry(Generic[D]):
    """One entry: where it sits in the chain (seq, ts, actor, kind) and its typed data."""

    entry: Entry
    data: D

    @property
    def seq(self) -> int:
        """The entry's sequence number in its batch."""
        return self.entry.seq

    @property
    def ts(self) -> datetime:
        """The entry's record timestamp (UTC, the shared clock)."""
        return self.entry.ts

    @property
    def actor(self) -> str:
        """Who wrote it (a user id or system/monitor/controller)."""
        return self.entry.actor

    @property
    def kind(self) -> str:
        """The entry kind (the vocabulary key)."""
        return self.entry.kind


def read_typed(entries: Iterable[Entry]) -> list[TypedEntry[EntryData]]:
    """Every entry with its typed data (VocabularyError names an entry the vocabulary does not know)."""
    return [TypedEntry(e, typed(e)) for e in entries]


def of_type(entries: Iterable[TypedEntry[EntryData]], model: type[D]) -> list[TypedEntry[D]]:
    """The entries whose data is a `model` (e.g. every VialJudgement), typed as such for the checker."""
    return [TypedEntry(t.entry, t.data) for t in entries if isinstance(t.data, model)]
