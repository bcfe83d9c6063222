"""Fixtures of the record tests: a store on SQLite (temp file) and on PostgreSQL (fresh schema per test), a clock."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fillfinish.record import RecordStore

PG_URL = os.environ.get("FILLFINISH_TEST_PG_URL")
PG_SKIP = "FILLFINISH_TEST_PG_URL is not set (start a server with scripts/test-postgres.sh and export its URL)"


class StepClock:
    """A deterministic record clock: each call returns the previous time plus `step` (thread-safe)."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(milliseconds=250)) -> None:
        self._t = start or datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._t += self._step
            return self._t


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A fresh, empty record database URL: a SQLite file, or a new PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'record.db'}"
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"ffrec_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


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


BATCH_FIELDS: dict[str, Any] = {
    "product": "Ranibizumab 10 mg/mL",
    "product_code": "RBZ-10",
    "recipe_name": "ranibizumab",
    "recipe_version": "1.2.0",
    "recipe_hash": "ab" * 32,
    "recipe_snapshot": 'name = "ranibizumab"\nfill_volume_ul = 500.0\n',
    "lot": "L-2611-07",
    "planned_vials": 120,
    "operator": "alice",
    "mode": "production",
    "site_config": {"clock": {"speed": 1.0, "epoch": 1764085000.0}, "site": {"lamp_warn_hours": 7000.0}},
}


def new_batch(store: RecordStore, **overrides: Any) -> str:
    """Create a batch with plausible fields (overridable)."""
    return store.create_batch(**{**BATCH_FIELDS, **overrides})


def fill(store: RecordStore, batch_id: str, n: int, start: int = 0) -> None:
    """Append `n` vial entries."""
    for i in range(start, start + n):
        store.append(batch_id, "vial", {"vial": i + 1, "net_g": 0.5 + i / 1000, "accepted": True}, "controller")


GUARDS = {
    "sqlite": [f"DROP TRIGGER IF EXISTS {t}_no_{a}" for t in ("batch", "entry", "ledger") for a in ("update", "delete")],
    "postgresql": [
        f"DROP TRIGGER IF EXISTS {t}_{g} ON {t}"
        for t in ("batch", "entry", "ledger")
        for g in ("no_update_delete", "no_truncate")
    ],
}


def tamper(store: RecordStore, *statements: str, params: dict[str, Any] | None = None) -> None:
    """Act as an attacker with database access: drop the append-only triggers, then run raw SQL in one transaction."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        for sql in GUARDS[store.dialect]:
            conn.exec_driver_sql(sql)
        for sql in statements:
            conn.execute(text(sql), params or {})
