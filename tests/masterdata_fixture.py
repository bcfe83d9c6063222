"""One shared helper that gives a test database the master data a batch start needs (issue 8): demo accounts, the
recipe(s) imported and approved by a QA person, a trained and aseptically qualified operator, approved lots, a
cleaning and a line clearance by a second person; written on the site config's clock, as `run` checks on it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fillfinish.clock import Clock
from fillfinish.config import load_site_config
from fillfinish.masterdata.demo import Prepared, prepare
from fillfinish.record.store import RecordStore


@dataclass
class Seeded:
    """The prepared master data and the `run` arguments that use them."""

    prepared: Prepared
    operator: str

    @property
    def password(self) -> str:
        """The operator's password."""
        return self.prepared.passwords[self.operator]

    @property
    def material_args(self) -> list[str]:
        """`--material KIND=LOT` for every prepared lot except the tips (given with --tip-lot by the tests)."""
        args: list[str] = []
        for kind, lot in self.prepared.materials.items():
            if kind != "tips":
                args += ["--material", f"{kind}={lot}"]
        return args

    @property
    def run_args(self) -> list[str]:
        """`--password-stdin` and the lots, to append to a `fillfinish run` command line (give `stdin_text`)."""
        return ["--password-stdin", *self.material_args]

    @property
    def stdin_text(self) -> str:
        """What `run --password-stdin` reads: the operator's password, one line."""
        return f"{self.password}\n"

    def password_line(self, user: str) -> str:
        """One person's password as a line for `--password-stdin` (e.g. sup.bob for resume/abort)."""
        return f"{self.prepared.passwords[user]}\n"


def seed_master_data(db_url: str, site_path: Path, recipes: list[Path], operator: str, *,
                     operator_password: str | None = None, tip: tuple[str, str, str] | None = None,
                     extra_people: dict[str, str] | None = None) -> Seeded:
    """Prepare everything `operator` needs to start each of `recipes` on the line of `site_path` (see module doc)."""
    site = load_site_config(site_path)
    clock = Clock(site.clock.speed, site.clock.epoch, site.clock.timeline)  # the shared timeline when there is one
    with RecordStore(db_url, now=clock.now) as store:
        prepared = prepare(store, recipes, operator, clock.now(), line_id=site.master_data.line_id,
                           operator_password=operator_password, lot_prefix="TEST", tip=tip,
                           extra_people=extra_people)
    return Seeded(prepared, operator)


def feed(proc: Any, text: str) -> None:
    """Give a started `fillfinish` process (Popen with stdin=PIPE) its --password-stdin line(s)."""
    proc.stdin.write(text)
    proc.stdin.flush()


def tip_expiry(days: int = 300) -> str:
    """An expiry date `days` ahead, as the tests give --tip-expiry."""
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()
