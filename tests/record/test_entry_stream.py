"""Paged reading of a batch's entries (flat memory for long batches): same entries, same order as store.entries."""

from __future__ import annotations

import pytest

from fillfinish.record import RecordStore, UnknownBatchError
from fillfinish.record.entry_stream import iter_entries

from record_helpers import fill, new_batch


@pytest.mark.parametrize("page", [1, 2, 3, 7, 2000])
def test_pages_give_every_entry_once_in_order(store: RecordStore, page: int) -> None:
    batch, other = new_batch(store), new_batch(store)
    fill(store, batch, 7)
    fill(store, other, 2)  # another batch's entries never leak in
    assert list(iter_entries(store, batch, page=page)) == store.entries(batch)


def test_an_empty_batch_and_an_unknown_one(store: RecordStore) -> None:
    batch = new_batch(store)
    assert list(iter_entries(store, batch)) == []
    with pytest.raises(UnknownBatchError):
        list(iter_entries(store, "B-19990101-0001"))


def test_entries_appended_while_reading_are_seen_at_the_end(store: RecordStore) -> None:
    batch = new_batch(store)
    fill(store, batch, 4)
    seen = []
    for entry in iter_entries(store, batch, page=2):
        seen.append(entry.seq)
        if entry.seq == 1:
            fill(store, batch, 1)  # the chain grows at its end only: the reader reaches it
    assert seen == [1, 2, 3, 4, 5]
