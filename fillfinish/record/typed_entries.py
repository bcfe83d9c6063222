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

from pydantic import ConfigDict

from fillfinish.record.models import Entry
from fillfinish.record.vocabulary import EntryData, VocabularyError, _f, typed

__all__ = ["TypedEntry", "Unreadable", "read_typed", "of_type", "typed_or_unreadable"]


class Unreadable(EntryData):
    """An entry whose data the vocabulary does not accept (a tampered or pre-vocabulary record): kept, never typed.

    Not a kind (not in VOCABULARY, so never written); exports show it instead of failing, so a damaged record can
    still be reviewed and its `record verify` result shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    problem: str = _f("why the vocabulary refused the entry's data")

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


def typed_or_unreadable(entry: Entry) -> EntryData:
    """The entry's typed data, or `Unreadable` with the reason when the vocabulary refuses it."""
    try:
        return typed(entry)
    except VocabularyError as exc:
        return Unreadable(problem=str(exc))


def read_typed(entries: Iterable[Entry]) -> list[TypedEntry[EntryData]]:
    """Every entry with its typed data; an entry the vocabulary refuses comes back as `Unreadable` with the reason."""
    return [TypedEntry(e, typed_or_unreadable(e)) for e in entries]


def of_type(entries: Iterable[TypedEntry[EntryData]], model: type[D]) -> list[TypedEntry[D]]:
    """The entries whose data is a `model` (e.g. every VialJudgement), typed as such for the checker."""
    return [TypedEntry(t.entry, t.data) for t in entries if isinstance(t.data, model)]
