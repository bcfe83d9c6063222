"""Write tests/fixtures/record.db: batch records written by the real controller on the simulator, then worked through
QA as people would, for the export tests (tests/record_export).

Three batches on one SQLite record:
- the first ("full"): FGF-2, 10 vials, the enclosure door opens at vial 4 (alarms, deviations, hold), the supervisor
  unholds; afterwards viable results (growth on one grade A settle plate), the deviations worked through 8D and
  closed, and a QA rejection;
- the second ("clean"): FGF-2, 10 vials, nothing happens; every viable result 0 CFU and verified, QA release;
- the third: a media fill of 10 units with its outcome (one positive unit).

Run from the repository root:  .venv/bin/python scripts/make_fixture_record.py [--out tests/fixtures/record.db]
Users (for tests that sign on the copy): qa.dana / qa.erik (QA), sup.bob (supervisor), op.anna (operator), all with
the password in PASSWORD below.
"""

from __future__ import annotations

import argparse
import os
import shutil
import asyncio
import dataclasses
import datetime as dt
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from argon2 import PasswordHasher  # noqa: E402

from fillfinish.batch.controller import TipLot  # noqa: E402
from fillfinish.config import load_site_config  # noqa: E402
from fillfinish.machine.packml import State  # noqa: E402
from fillfinish.people.users import UserStore  # noqa: E402
from fillfinish.quality import deviations, mediafill, viable  # noqa: E402
from fillfinish.quality.release import reject, release  # noqa: E402
from fillfinish.recipes.loader import load_recipe  # noqa: E402
from fillfinish.record import RecordStore  # noqa: E402
from fillfinish.session import controller_session  # noqa: E402
from sim.faults import FaultSpec  # noqa: E402
from sim.runner import Simulator  # noqa: E402

PASSWORD = "fixture-pass-1"
SPEED = 400.0
PEOPLE = (("qa.dana", "Dana QA", "qa"), ("qa.erik", "Erik Quality", "qa"), ("sup.bob", "Bob Supervisor", "supervisor"),
          ("op.anna", "Anna Operator", "operator"))


async def _wait(predicate, what: str, timeout: float = 300.0) -> None:  # type: ignore[no-untyped-def]
    """Poll until `predicate()` holds (real seconds; the simulator is fast)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _batches(sim: Simulator, url: str, tmp: Path) -> list[str]:
    """Run the three batches on the simulator; return their ids."""
    site = load_site_config(sim.write_site_config(tmp / "site.toml", url))
    # the fixture stands for a production record (to be released or rejected in the export tests): written by the
    # real controller over the simulator's transports, but not marked simulation; the record is test data only
    site = site.model_copy(update={"record": site.record.model_copy(update={"simulation": False})})
    tip = TipLot("TL-FIX-1", "EO-CYCLE-7", (dt.date.today() + dt.timedelta(days=400)).isoformat())
    ids = []
    fgf2 = load_recipe(REPO / "recipes" / "fgf2.toml")
    async with controller_session(site, fgf2) as c:
        sim.world.faults.schedule(FaultSpec(name="door.open", at_vial=4))
        task = asyncio.create_task(c.run_new(lot="L-FIX-FULL", vials=10, operator="op.anna", tip_lot=tip))
        await _wait(lambda: c.machine.state == State.Held or task.done(), "the door hold")
        sim.world.faults.clear()
        await asyncio.sleep(sim.clock.real_seconds(240.0))
        await _wait(lambda: c.monitor is not None and c.monitor.environment_ok() and c.line.plc.connected,
                    "interlocks clear")
        await c.command("Unhold", "sup.bob", "door closed, line inspected")
        ids.append((await task).batch_id)
    async with controller_session(site, fgf2) as c:
        ids.append((await c.run_new(lot="L-FIX-CLEAN", vials=10, operator="op.anna", tip_lot=tip)).batch_id)
    mf = load_recipe(REPO / "recipes" / "media-fill.toml")
    small = dataclasses.replace(mf, recipe=mf.recipe.model_copy(update={"fill": mf.recipe.fill.model_copy(
        update={"vial_count_min": 1, "prime_volume_ul": 0.0})}))
    async with controller_session(site, small) as c:
        ids.append((await c.run_new(lot="L-FIX-APS", vials=10, operator="op.anna", tip_lot=tip)).batch_id)
    return ids


def _quality(store: RecordStore, full: str, clean: str, aps: str) -> None:
    """Work the batches through QA: viable results, 8D deviations, rejection, release, media-fill outcome."""
    users = UserStore(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    for name, full_name, role in PEOPLE:
        users.add(name, full_name, role, PASSWORD, actor="fixture")
    for batch in (full, clean):
        for s in viable.status(store.batch(batch), store.entries(batch)).samples:
            cfu = 2 if batch == full and s.planned.sample_id == "SP-1" else 0
            viable.add_result(store, batch, s.planned.sample_id, cfu=cfu, incubation_start="2026-12-01T08:00",
                              incubation_end="2026-12-06T08:00", medium_lot="TSA-2611", user="op.anna",
                              password=PASSWORD, organism="Micrococcus luteus" if cfu else "", users=users)
            viable.verify_result(store, batch, s.planned.sample_id, user="sup.bob", password=PASSWORD, users=users)
    for dev in deviations.sync(store, full):
        deviations.update(store, dev.number, {
            "d1_team": "Bob Supervisor, Dana QA", "d2_problem": dev.title, "d3_containment": "batch held, door closed",
            "d4_root_cause": "door interlock released during fill", "d5_corrective_action": "door lock re-adjusted",
            "d6_verification": "door test 20 times", "d7_preventive_action": "door check in line clearance",
            "d8_closure": "team informed", "classification": "major",
            "impact": "batch not suitable for cell therapy grade"}, user="sup.bob", password=PASSWORD, users=users)
        deviations.close(store, dev.number, user="qa.dana", password=PASSWORD, users=users)
    reject(store, full, "qa.erik", PASSWORD, reason="door opening and grade A growth during the fill",
           expiry=dt.date(2028, 11, 30), users=users)
    release(store, clean, "qa.dana", PASSWORD, expiry=dt.date(2028, 11, 30), comment="reviewed by exception",
            users=users)
    mediafill.record_result(store, aps, incubated=10, growth=1, not_incubated=0, justification="", reader="op.anna",
                            reader_password=PASSWORD, verifier="sup.bob", verifier_password=PASSWORD, users=users)


def main() -> int:
    """Build the fixture record at --out (replacing an older one)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "record.db")
    args = parser.parse_args()
    out: Path = args.out
    key_out = out.with_suffix(".sitekey")  # the test-only site key the record is keyed with (committed beside it)
    with tempfile.TemporaryDirectory(prefix="fillfinish-fixture-") as tmp:
        key = Path(tmp) / "record.sitekey"  # witness files land beside the key: keep them out of tests/fixtures
        if key_out.exists():
            shutil.copyfile(key_out, key)
        os.environ["FILLFINISH_SITE_KEY"] = str(key)
        db = Path(tmp) / "record.db"
        url = f"sqlite:///{db}"
        sim = Simulator(SPEED).start()
        try:
            full, clean, aps = asyncio.run(_batches(sim, url, Path(tmp)))
        finally:
            sim.stop()
        store = RecordStore(url, create=False)
        try:
            _quality(store, full, clean, aps)
            assert store.verify().ok
        finally:
            store.close()
        from fillfinish.quality.backup import backup

        out.unlink(missing_ok=True)
        backup(url, out)  # a compact, consistent copy (no WAL side files)
        shutil.copyfile(key, key_out)
        key_out.chmod(0o600)
    print(f"wrote {out}: {full} (door opening, rejected), {clean} (released), {aps} (media fill, failed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
