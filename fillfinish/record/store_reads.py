"""The record's read API (headers and entries of a batch), a part of RecordStore kept in its own module."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from fillfinish.record.chain import parse_ts
from fillfinish.record.errors import RecordError, UnknownBatchError
from fillfinish.record.models import REGISTRY_MODE, BatchHeader, BatchRow, Entry, EntryRow

BATCH = BatchRow.__table__
ENTRY = EntryRow.__table__


def _header_from_row(row: Any) -> BatchHeader:
    """A batch table row as a BatchHeader dataclass."""
    try:
        site_config = json.loads(row.site_config)
        created = parse_ts(row.created_at)
    except ValueError as exc:
        raise RecordError(f"batch {row.batch_id}: header is not readable ({exc}); run `fillfinish record verify`") from exc
    return BatchHeader(
        batch_id=row.batch_id,
        created_at=created,
        product=row.product,
        product_code=row.product_code,
        recipe_name=row.recipe_name,
        recipe_version=row.recipe_version,
        recipe_hash=row.recipe_hash,
        recipe_snapshot=row.recipe_snapshot,
        lot=row.lot,
        planned_vials=row.planned_vials,
        operator=row.operator,
        mode=row.mode,
        site_config=site_config,
        header_hash=row.header_hash,
    )


def _entry_from_row(row: Any) -> Entry:
    """An entry table row as an Entry dataclass."""
    try:
        data = json.loads(row.data)
        ts = parse_ts(row.ts)
    except ValueError as exc:
        raise RecordError(
            f"batch {row.batch_id} entry {row.seq}: not readable ({exc}); run `fillfinish record verify`"
        ) from exc
    return Entry(
        batch_id=row.batch_id,
        seq=row.seq,
        global_seq=row.global_seq,
        ts=ts,
        kind=row.kind,
        actor=row.actor,
        data=data,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class StoreReads:
    """Reads of RecordStore: one read transaction each (a consistent snapshot), rows turned into dataclasses."""

    _url: str

    def _read(self) -> Any:  # pragma: no cover - RecordStore's
        """One read transaction (RecordStore._read)."""
        raise NotImplementedError

    def batch(self, batch_id: str) -> BatchHeader:
        """The header of `batch_id`; UnknownBatchError when there is none."""
        with self._read() as conn:
            row = conn.execute(select(BATCH).where(BATCH.c.batch_id == batch_id)).first()
        if row is None:
            raise UnknownBatchError(f"unknown batch {batch_id!r} in {self._url}")
        return _header_from_row(row)

    def batches(self, *, include_registries: bool = False) -> list[BatchHeader]:
        """All batch headers, oldest first; registry chains (mode `registry`) only with `include_registries`."""
        query = select(BATCH)
        if not include_registries:
            query = query.where(BATCH.c.mode != REGISTRY_MODE)
        with self._read() as conn:
            rows = conn.execute(query.order_by(BATCH.c.created_at, BATCH.c.batch_id)).all()
        return [_header_from_row(row) for row in rows]

    def entries(self, batch_id: str, kinds: Iterable[str] | None = None) -> list[Entry]:
        """The entries of `batch_id` in seq order, optionally only those whose kind is in `kinds`."""
        wanted = None if kinds is None else ([kinds] if isinstance(kinds, str) else list(kinds))
        with self._read() as conn:
            if conn.execute(select(BATCH.c.batch_id).where(BATCH.c.batch_id == batch_id)).first() is None:
                raise UnknownBatchError(f"unknown batch {batch_id!r} in {self._url}")
            query = select(ENTRY).where(ENTRY.c.batch_id == batch_id)
            if wanted is not None:
                query = query.where(ENTRY.c.kind.in_(wanted))
            rows = conn.execute(query.order_by(ENTRY.c.seq, ENTRY.c.id)).all()
        return [_entry_from_row(row) for row in rows]

    def last_entry(self, batch_id: str) -> Entry | None:
        """The entry with the highest seq of `batch_id`, or None when it has none yet."""
        with self._read() as conn:
            if conn.execute(select(BATCH.c.batch_id).where(BATCH.c.batch_id == batch_id)).first() is None:
                raise UnknownBatchError(f"unknown batch {batch_id!r} in {self._url}")
            row = conn.execute(
                select(ENTRY).where(ENTRY.c.batch_id == batch_id).order_by(ENTRY.c.seq.desc()).limit(1)
            ).first()
        return None if row is None else _entry_from_row(row)
