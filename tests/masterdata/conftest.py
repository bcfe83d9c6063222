"""Fixtures of the master-data tests: a record (SQLite and PostgreSQL via `db_url`) on a settable clock, prepared
with the shared helper so each test changes one thing and checks the one refusal it causes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fillfinish.masterdata.demo import prepare
from fillfinish.recipes.loader import load_recipe
from fillfinish.record.store import RecordStore
from masterdata_helpers import FGF2, MEDIA_FILL, START, SetClock, World, site


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    clock = SetClock(START)
    store = RecordStore(db_url, now=clock)
    try:
        prepared = prepare(store, [FGF2, MEDIA_FILL], "op.anna", clock(), lot_prefix="T",
                           extra_people={"qa.other": "qa", "op.bert": "operator"})
        yield World(store, clock, prepared, load_recipe(FGF2), site())
    finally:
        store.close()
