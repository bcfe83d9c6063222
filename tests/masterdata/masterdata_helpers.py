"""Helpers of the master-data tests: a settable clock, the prepared `World` and a site config stand-in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fillfinish.masterdata.demo import Prepared
from fillfinish.masterdata.settings import MasterDataSettings
from fillfinish.recipes.loader import LoadedRecipe
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
