"""Authority checks (21 CFR 11.10(g)): once the record has user accounts, starting a batch needs an operator's (or
supervisor's) user id and password; a wrong password or role is refused before anything moves."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from fillfinish.people.users import UserStore
from fillfinish.record.store import RecordStore
from sim.runner import Simulator

from masterdata_fixture import seed_master_data

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FF = [sys.executable, "-m", "fillfinish"]


def ff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI; `stdin` feeds --password-stdin (no stdin at all otherwise: no terminal to prompt on)."""
    return subprocess.run([*FF, *args], capture_output=True, text=True, timeout=180, cwd=REPO, input=stdin,
                          stdin=subprocess.DEVNULL if stdin is None else None, env={**os.environ, "COLUMNS": "200"})


def test_start_needs_a_known_operator_with_the_right_password(simulator: Simulator, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    site = simulator.write_site_config(tmp_path / "site.toml", db)
    # the accounts are made in this process (`user add` through the CLI: tests/people/test_people_cli.py), with a
    # cheap hash: the children verify any argon2 hash by its own parameters
    with RecordStore(db) as store:
        people = UserStore(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        for name, role in (("op.anna", "operator"), ("qa.karin", "qa")):
            people.add(name, name, role, "long enough 1", actor="setup")
    expiry = (dt.date.today() + dt.timedelta(days=300)).isoformat()
    seeded = seed_master_data(db, site, [REPO / "recipes" / "fgf2.toml"], "op.anna", operator_password="long enough 1",
                              tip=("TL", "EO", expiry))
    base = ["run", "--config", str(site), "--recipe", str(REPO / "recipes" / "fgf2.toml"), "--lot", "L-AUTH",
            "--vials", "10", "--tip-lot", "TL", "--tip-cycle", "EO", "--tip-expiry", expiry, "--no-progress",
            *seeded.material_args]

    no_password = ff(*base, "--operator", "op.anna")
    assert no_password.returncode == 1 and "--password-stdin" in no_password.stderr
    wrong = ff(*base, "--operator", "op.anna", "--password-stdin", stdin="nope nope nope\n")
    assert wrong.returncode == 1 and "start a batch" in wrong.stderr and "Traceback" not in wrong.stderr
    qa = ff(*base, "--operator", "qa.karin", "--password-stdin", stdin="long enough 1\n")
    assert qa.returncode == 1 and "role qa" in qa.stderr
    with RecordStore(db, create=False) as store:
        assert store.batches() == [], "nothing started"

    ok = ff(*base, "--operator", "op.anna", "--password-stdin", stdin="long enough 1\n")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with RecordStore(db, create=False) as store:
        (header,) = store.batches()
        start = store.entries(header.batch_id, kinds=["run_start"])[0]
    assert start.data["signature"] == {"meaning": "performed", "name": "op.anna", "authenticated": True}
