"""Fixtures of the record tests: a store on SQLite (temp file) and on PostgreSQL (fresh schema per test), a clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fillfinish.record import RecordStore
from record_helpers import StepClock



@pytest.fixture
def clock() -> StepClock:
    """The record clock of a test."""
    return StepClock()


@pytest.fixture
def store(db_url: str, clock: StepClock) -> Iterator[RecordStore]:
    """An open RecordStore on a fresh database, closed after the test."""
    record = RecordStore(db_url, now=clock)
    yield record
    record.close()
