"""A batch's entries read in pages, so a reader of a long batch (10,000 vials: 54,000 entries) holds one page at a
time instead of the whole record (issue 11 point 6: flat controller memory).

Same order and content as `RecordStore.entries`; each page is its own read transaction, which is safe because a
batch's chain only grows at its end (entries are append-only), so a page boundary never skips or repeats an entry.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import and_, or_, select

from fillfinish.record.errors import UnknownBatchError
from fillfinish.record.models import Entry
from fillfinish.record.store import RecordStore
from fillfinish.record.store_reads import BATCH, ENTRY, _entry_from_row
PAGE = 2000  # entries per read: a few MB of rows at most


def iter_entries(store: RecordStore, batch_id: str, *, page: int = PAGE) -> Iterator[Entry]:
    """The entries of `batch_id` in (seq, id) order, read `page` at a time; UnknownBatchError for an unknown batch."""
    if page < 1:
        raise ValueError(f"page must be >= 1, got {page!r}")
    with store._read() as conn:
        if conn.execute(select(BATCH.c.batch_id).where(BATCH.c.batch_id == batch_id)).first() is None:
            raise UnknownBatchError(f"unknown batch {batch_id!r} in {store.url}")
    after: tuple[int, int] | None = None
    while True:
        query = select(ENTRY).where(ENTRY.c.batch_id == batch_id)
        if after is not None:
            query = query.where(or_(ENTRY.c.seq > after[0], and_(ENTRY.c.seq == after[0], ENTRY.c.id > after[1])))
        with store._read() as conn:
            rows = conn.execute(query.order_by(ENTRY.c.seq, ENTRY.c.id).limit(page)).all()
        for row in rows:
            yield _entry_from_row(row)
        if len(rows) < page:
            return
        after = (rows[-1].seq, rows[-1].id)
