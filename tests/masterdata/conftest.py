"""Fixtures of the master-data tests: a record (SQLite and PostgreSQL via `db_url`) on a settable clock, prepared
with the shared helper so each test changes one thing and checks the one refusal it causes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fillfinish.masterdata.demo import Prepared, prepare
from fillfinish.masterdata.settings import MasterDataSettings
from fillfinish.recipes.loader import LoadedRecipe, load_recipe
from fillfinish.record.store import RecordStore

REPO = Path(__file__).resolve().parents[2]
FGF2 = REPO / "recipes" / "fgf2.toml"
MEDIA_FILL = REPO / "recipes" / "media-fill.toml"
START = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)


class SetClock:
    """A clock the test sets (Unix seconds), shared by the record and the checks."""

    def __init__(self, start: dt.datetime) -> None:
        self.t = start.timestamp()

    def __call__(self) -> float:
        return self.t

    def advance(self, **delta: float) -> None:
        """Move the clock on by a timedelta's keywords (days=, hours=)."""
        self.t += dt.timedelta(**delta).total_seconds()


@dataclass
class World:
    """A prepared record: store, clock, the prepared lots and passwords, the site settings and the FGF-2 recipe."""

    store: RecordStore
    clock: SetClock
    prepared: Prepared
    fgf2: LoadedRecipe
    site: Any
    operator: str = "op.anna"

    def pw(self, user: str) -> str:
        """The password of a prepared account."""
        return self.prepared.passwords[user]

    def check(self, loaded: LoadedRecipe | None = None, **changes: Any) -> Any:
        """Run the start checks for the operator with the prepared lots (overridable)."""
        from fillfinish.masterdata.start_checks import check_start

        args: dict[str, Any] = {"operator": self.operator, "vials": 24, "materials": dict(self.prepared.materials),
                                "now": self.clock()}
        args.update(changes)
        return check_start(self.store, self.site, loaded or self.fgf2, **args)


def site(**settings: Any) -> Any:
    """A site config stand-in: [master_data] settings and the legacy [site] aps_last_success."""
    legacy = settings.pop("aps_last_success", START.date() - dt.timedelta(days=90))
    return SimpleNamespace(master_data=MasterDataSettings(**settings), site=SimpleNamespace(aps_last_success=legacy))


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


@pytest.fixture(autouse=True)
def _fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters in these tests (the services build their own UserStore)."""
    from argon2 import PasswordHasher

    import fillfinish.people.users as users_module

    fast = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users_module, "PasswordHasher", lambda: fast)
