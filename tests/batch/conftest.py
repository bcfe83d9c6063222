"""Fixtures of the batch tests: a recorder on a fresh SQLite record with one batch."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from fillfinish.batch.recorder import BatchRecorder
from fillfinish.record.store import RecordStore


@pytest.fixture
def rec(tmp_path: Path) -> Iterator[BatchRecorder]:
    """The pen of one new batch; its writer thread and the store are closed after the test."""
    store = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    bid = store.create_batch(product="P", product_code="PC", recipe_name="r", recipe_version="1",
                             recipe_hash="0" * 64, recipe_snapshot="# recipe", lot="L", planned_vials=3,
                             operator="op", mode="production", site_config={})
    recorder = BatchRecorder(store, bid)
    yield recorder
    recorder.close()
    store.close()
