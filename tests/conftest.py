"""Fixtures shared by every test folder: a fresh record database on SQLite and, when FILLFINISH_TEST_PG_URL names a
server (CI starts one with scripts/test-postgres.sh), on PostgreSQL too."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fillfinish.record import RecordStore
from step_clock import StepClock

FAST_ARGON2 = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
"""Cheap argon2 parameters for the passwords the tests set (production: argon2-cffi's defaults, ~0.15 s a hash here).
A hash carries its parameters, so a child `fillfinish` process verifies such a password as cheaply."""


@pytest.fixture(autouse=True)
def _fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every UserStore a test builds without its own hasher hashes with FAST_ARGON2 (the e2e and people tests set
    passwords for every seeded person; at the default cost each one took ~0.15 s of CPU and 64 MB)."""
    from argon2 import PasswordHasher

    import fillfinish.people.users as users_module

    fast = PasswordHasher(**FAST_ARGON2)
    monkeypatch.setattr(users_module, "PasswordHasher", lambda: fast)


PG_URL = os.environ.get("FILLFINISH_TEST_PG_URL")
PG_SKIP = "FILLFINISH_TEST_PG_URL is not set (start a server with scripts/test-postgres.sh and export its URL)"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A SQLite record migrated to head once per worker: a test's fresh record is a copy of it, so the Alembic
    migrations (about 0.2 s a store) run once instead of once per test. Holds no batch, entry or key-bound row."""
    path = tmp_path_factory.mktemp("migrated") / "record.db"
    RecordStore(f"sqlite:///{path}").close()
    return path


def fresh_sqlite_url(path: Any, template: Any, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh record at `path`: a copy of the migrated `template`, or (marker `unmigrated_db`) no file at
    all, for the tests of opening and migrating itself."""
    if request.node.get_closest_marker("unmigrated_db") is None:
        shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Any, migrated_sqlite: Any) -> Iterator[str]:
    """A fresh record database URL: a SQLite file (migrated, holding nothing; `unmigrated_db`: not there yet), or a
    new, empty PostgreSQL schema (dropped afterwards; the store migrates it)."""
    if request.param == "sqlite":
        yield fresh_sqlite_url(tmp_path / "record.db", migrated_sqlite, request)
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"fftest_{uuid.uuid4().hex[:12]}"
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


@pytest.fixture(autouse=True)
def site_key_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every test gets its own site key file (created on first use) via $FILLFINISH_SITE_KEY, inherited by the CLI
    subprocesses it starts, so no test writes a key into the home folder (decision 0012)."""
    path = tmp_path / "test.sitekey"
    monkeypatch.setenv("FILLFINISH_SITE_KEY", str(path))
    return path


def _session_folder(factory: pytest.TempPathFactory, name: str, variable: str) -> Iterator[Any]:
    """A folder of this session named by environment `variable` (inherited by CLI children) while it lasts."""
    path = factory.mktemp(name)
    before = os.environ.get(variable)
    os.environ[variable] = str(path)
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before


@pytest.fixture(scope="session", autouse=True)
def client_pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The console's client certificate in this session's own folder ($FILLFINISH_CLIENT_PKI, inherited by CLI
    children), never in the home folder that other runs (and parallel workers) share."""
    yield from _session_folder(tmp_path_factory, "client-pki", "FILLFINISH_CLIENT_PKI")


@pytest.fixture(scope="session", autouse=True)
def opcua_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The OPC UA address-space cache (fillfinish/opcua_cache.py) in this session's own folder
    ($FILLFINISH_CACHE_DIR), never in the home folder: each worker writes it once."""
    yield from _session_folder(tmp_path_factory, "opcua-cache", "FILLFINISH_CACHE_DIR")


@pytest.fixture(scope="session")
def opcua_shelf(opcua_cache_dir: Any) -> Any:
    """A ready copy of OPC UA's standard address space for the simulators the tests start (a fast server start)."""
    import asyncio

    from fillfinish.opcua_cache import standard_space_shelf

    return asyncio.run(standard_space_shelf())


@pytest.fixture
def clock() -> StepClock:
    """The clock of a test (its record and users); a folder may define its own."""
    return StepClock()


@pytest.fixture
def store(db_url: str, clock: StepClock) -> Iterator[RecordStore]:
    """An open RecordStore on a fresh database (SQLite file or PostgreSQL schema), closed after the test."""
    record = RecordStore(db_url, now=clock)
    yield record
    record.close()
