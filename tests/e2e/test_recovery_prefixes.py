"""Recovery that always recovers: every prefix of a real simulator batch's record (header only, header + run_start,
mid-phase, mid-dispense, post-fill, ...) is copied into a fresh record and recovered; each ends in a defined state:
Stopped with a disposition before Execute, Held after (Complete or Aborted where the batch had got there), with the
chain intact, and a second recover finds nothing new to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fillfinish.batch.controller import TipLot
from fillfinish.batch.history import BatchHistory
from fillfinish.batch.recovery import NothingToRecover, abort_without_devices, recover
from fillfinish.config import SiteConfig
from fillfinish.recipes.loader import load_recipe
from fillfinish.record.store import RecordStore
from fillfinish.record.verify import verify
from fillfinish.session import controller_session

from e2e_support import finish, start_batch

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


async def test_every_record_prefix_recovers(site: SiteConfig, tmp_path: Path, tip_lot: TipLot) -> None:
    text = (REPO / "recipes" / "fgf2.toml").read_text()
    text = text.replace("vial_count_min = 10", "vial_count_min = 1").replace("post_fill_monitoring_s = 600.0",
                                                                             "post_fill_monitoring_s = 60.0")
    (tmp_path / "short.toml").write_text(text)
    async with controller_session(site, load_recipe(tmp_path / "short.toml")) as c:
        outcome = await finish(start_batch(c, lot="L-PREFIX", vials=2, operator="op.anna", tip_lot=tip_lot))
        assert outcome.state == "Complete"
        header = c.store.batch(c.batch_id)
        # measurements (particle samples, UV readings) do not change what recovery decides: left out for speed
        entries = [e for e in c.store.entries(c.batch_id) if e.kind != "measurement"]
    kinds = {e.kind for e in entries}
    assert {"run_start", "phase", "intent", "outcome", "vial", "post_fill_monitoring", "disposition"} <= kinds

    growing = tmp_path / "growing.db"
    store = RecordStore(f"sqlite:///{growing}")
    fields = {k: getattr(header, k) for k in ("product", "product_code", "recipe_name", "recipe_version",
                                              "recipe_hash", "recipe_snapshot", "lot", "planned_vials", "operator",
                                              "mode", "site_config")}
    batch = store.create_batch(**fields)
    seen: dict[str, int] = {}
    try:
        for k in range(len(entries) + 1):
            if k:
                e = entries[k - 1]
                store.append(batch, e.kind, e.data, e.actor)
            copy = tmp_path / f"prefix-{k}.db"
            with sqlite3.connect(growing) as src, sqlite3.connect(copy) as dst:
                src.backup(dst)  # a consistent copy, WAL included
            with RecordStore(f"sqlite:///{copy}", create=False) as fresh:
                before = BatchHistory.from_entries(fresh.entries(batch))
                try:
                    report = recover(fresh, batch, fresh_now(fresh, batch))
                except NothingToRecover:
                    assert before.finished, f"prefix {k}: refused although unfinished"
                    seen["finished"] = seen.get("finished", 0) + 1
                    continue
                after = BatchHistory.from_entries(fresh.entries(batch))
                went_execute = any(x.kind == "state" and x.data.get("to") == "Execute" for x in entries[:k])
                if not went_execute:
                    assert after.state == "Stopped" and after.finished, f"prefix {k}: {after.state}"
                elif after.state != "Held":
                    assert after.state in ("Complete", "Aborted") and after.finished, f"prefix {k}: {after.state}"
                seen[after.state] = seen.get(after.state, 0) + 1
                if after.state == "Held" and k % 7 == 0:  # and a person can get it out: aborted in the record
                    abort_without_devices(fresh, batch, "sup.bob", "prefix test", "not connected")
                    assert BatchHistory.from_entries(fresh.entries(batch)).finished
                assert verify(fresh, batch).ok, f"prefix {k}: chain broken"
                assert report.state_after == after.state
            copy.unlink()
    finally:
        store.close()
    assert seen.get("Stopped", 0) >= 5 and seen.get("Held", 0) >= 20 and seen.get("Complete", 0) == 0 and seen.get("finished", 0) >= 1, seen


def fresh_now(store: RecordStore, batch: str) -> float:
    """A restart time just after the record's last entry (or its header)."""
    last = store.last_entry(batch)
    return (last.ts if last else store.batch(batch).created_at).timestamp() + 5.0
