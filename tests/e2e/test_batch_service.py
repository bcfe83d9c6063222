"""The batch service (fillfinish/batch/service.py) as the CLI, the demo and the console use it, against the shared
simulator over its ptys and OPC UA: one unfinished batch per line, start, a stop mid-fill, recover, resume and abort,
and who may do them. Every wait is on the record."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Callable

import pytest

from fillfinish.batch.controller import TipLot
from fillfinish.batch.service import BatchService, SessionOptions, StartRequest, UnfinishedBatch, pending_batches
from fillfinish.config import SiteConfig
from fillfinish.errors import UserError
from fillfinish.recipes.loader import LoadedRecipe, load_recipe
from fillfinish.record.store import RecordStore
from fillfinish.record.verify import verify
from hal.transport.tasks import cancel_and_wait
from sim.runner import Simulator

from e2e_support import kinds
from masterdata_fixture import Seeded, seed_master_data

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
EXPIRY = (dt.date.today() + dt.timedelta(days=300)).isoformat()


def short_recipe(tmp_path: Path) -> Path:
    """FGF-2 for one or two vials with short UV steps, no prime and a short post-fill window."""
    text = (REPO / "recipes" / "fgf2.toml").read_text()
    for old, new in (("vial_count_min = 10", "vial_count_min = 1"),
                     ("target_dose_mj_cm2 = 300.0", "target_dose_mj_cm2 = 150.0"),
                     ("uv_target_dose_mj_cm2 = 200.0", "uv_target_dose_mj_cm2 = 40.0"),
                     ("post_fill_monitoring_s = 600.0", "post_fill_monitoring_s = 60.0"),
                     ("prime_volume_ul = 500.0", "prime_volume_ul = 0.0")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "fgf2-short.toml"
    path.write_text(text)
    return path


@pytest.fixture
def recipe_path(tmp_path: Path) -> Path:
    return short_recipe(tmp_path)


@pytest.fixture
def recipe(recipe_path: Path) -> LoadedRecipe:
    return load_recipe(recipe_path)


@pytest.fixture
def seeded(db_url: str, site_path: Path, recipe_path: Path) -> Seeded:
    return seed_master_data(db_url, site_path, [recipe_path], "op.anna", tip=("TL-9", "EO-9", EXPIRY),
                            extra_people={"sup.bob": "supervisor"})


def start_request(recipe: LoadedRecipe, seeded: Seeded, vials: int = 2) -> StartRequest:
    """A start by op.anna with her password and the seeded lots."""
    materials = {k: v for k, v in seeded.prepared.materials.items() if k != "tips"}
    return StartRequest(recipe, "L-SVC", vials, "op.anna", password=lambda: seeded.password, materials=materials,
                        tip_lot=TipLot("TL-9", "EO-9", EXPIRY))


def as_person(seeded: Seeded, user: str) -> Callable[[], str]:
    """The password source of `user`."""
    return lambda: seeded.prepared.passwords[user]


async def wait_record(db_url: str, predicate: Callable[[list[Any]], Any], task: "asyncio.Task[Any]",
                      timeout: float = 120.0) -> tuple[str, list[Any]]:
    """Poll the record until `predicate(entries)` holds for a batch; fail at once when the run ends first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if task.done():
            raise AssertionError(f"the batch ended first: {task.result()!r}")
        with RecordStore(db_url, create=False) as store:
            for header in store.batches():
                entries = store.entries(header.batch_id)
                if predicate(entries):
                    return header.batch_id, entries
        await asyncio.sleep(0.05)
    raise AssertionError("the batch did not get there")


async def stopped_mid_fill(site: SiteConfig, db_url: str, recipe: LoadedRecipe, seeded: Seeded) -> str:
    """Start a batch through the service, stop it (task cancelled: the line made safe, no disposition) while vial 1
    is being dispensed, and return its id: an unfinished batch, as after a crash."""
    service = BatchService(site, db_url)
    task = asyncio.create_task(service.start(start_request(recipe, seeded)))
    batch_id, _ = await wait_record(db_url, lambda es: kinds(es, "intent", action="dispense", vial=1), task)
    # cancelled again until it ends: on Python 3.11 one cancel can be swallowed inside asyncua's wait_for
    await cancel_and_wait([task], retry_s=0.05)
    assert task.cancelled(), task
    return batch_id


async def test_start_is_refused_while_a_batch_of_the_line_is_unfinished(
        site: SiteConfig, db_url: str, recipe: LoadedRecipe, seeded: Seeded, simulator: Simulator) -> None:
    with RecordStore(db_url) as store:
        pending = store.create_batch(
            product="x", product_code="x", recipe_name=recipe.recipe.recipe.name, recipe_version="1",
            recipe_hash=recipe.sha256, recipe_snapshot=recipe.text, lot="L-OLD", planned_vials=2,
            operator="op.anna", mode="simulation", site_config=site.model_dump(mode="json"))
    moves, switches = simulator.world.positioner.moves, simulator.world.lamp.switch_count
    service = BatchService(site, db_url)
    assert service.unfinished() == [pending]
    with pytest.raises(UnfinishedBatch, match=f"batch {pending} did not end.*batch recover"):
        await service.start(start_request(recipe, seeded))
    assert simulator.world.positioner.moves == moves and simulator.world.lamp.switch_count == switches
    with RecordStore(db_url, create=False) as store:
        assert [h.batch_id for h in store.batches()] == [pending], "no second batch"
    assert [b.batch_id for b in pending_batches(db_url)] == [pending]


async def test_start_refused_for_a_wrong_password_before_anything_moves(
        site: SiteConfig, db_url: str, recipe: LoadedRecipe, seeded: Seeded, simulator: Simulator) -> None:
    moves = simulator.world.positioner.moves
    request = start_request(recipe, seeded)
    bad = StartRequest(**{**request.__dict__, "password": lambda: "not-her-password"})
    with pytest.raises(UserError, match="start a batch"):
        await BatchService(site, db_url).start(bad)
    assert simulator.world.positioner.moves == moves
    with RecordStore(db_url, create=False) as store:
        assert store.batches() == []


async def test_stop_mid_fill_then_recover_and_abort(site: SiteConfig, db_url: str, recipe: LoadedRecipe,
                                                    seeded: Seeded, simulator: Simulator) -> None:
    batch_id = await stopped_mid_fill(site, db_url, recipe, seeded)
    service = BatchService(site, db_url)
    with pytest.raises(UserError, match="not Held"):  # not recovered yet: nothing to abort, nothing sent
        await service.abort(batch_id, "sup.bob", "too early", as_person(seeded, "sup.bob"))
    simulator.world.set_lamp(True)  # whatever the line looks like after the stop, recover makes it safe
    (report,) = await service.recover()
    assert report.batch_id == batch_id and report.state_after == "Held"
    assert not simulator.world.lamp.commanded
    again = await service.recover(batch_id)
    assert again[0].already
    with pytest.raises(UserError, match="op.anna has role operator; allowed: supervisor"):
        await service.abort(batch_id, "op.anna", "not mine to decide", as_person(seeded, "op.anna"))
    outcome = await service.abort(batch_id, "sup.bob", "stopped by a test", as_person(seeded, "sup.bob"))
    assert outcome.state == "Aborted" and outcome.disposition is not None and not outcome.disposition.suitable
    with RecordStore(db_url, create=False) as store:
        entries = store.entries(batch_id)
        assert verify(store, batch_id).ok
        assert kinds(entries, "safe_state", action="recovery")[0].data["lamp_off"] is True
        assert kinds(entries, "operator", command="Abort")[0].actor == "sup.bob"
        (rec,) = kinds(entries, "material_reconciliation")  # an aborted batch's lots are reconciled too
        assert rec.data["bulk"]["lot"] == seeded.prepared.materials["bulk"] and rec.data["bulk"]["drawn_ml"] > 0
    assert service.unfinished() == []
    with pytest.raises(UserError, match="no unfinished batch"):
        await service.recover()


async def test_recover_then_resume_completes_the_batch(site: SiteConfig, db_url: str, recipe: LoadedRecipe,
                                                       seeded: Seeded) -> None:
    batch_id = await stopped_mid_fill(site, db_url, recipe, seeded)
    notices: list[str] = []
    service = BatchService(site, db_url, SessionOptions(serve_port=0, notify=notices.append))
    await service.recover()
    outcome = await service.resume(batch_id, "sup.bob", "inspected", as_person(seeded, "sup.bob"))
    assert outcome.state == "Complete", outcome
    assert any("controller OPC UA endpoint" in n for n in notices)
    with RecordStore(db_url, create=False) as store:
        entries = store.entries(batch_id)
        assert verify(store, batch_id).ok
        assert kinds(entries, "operator", command="Unhold")[0].actor == "sup.bob"
        assert kinds(entries, "disposition")
        assert len(kinds(entries, "material_reconciliation")) == 1  # a resumed batch is reconciled once
    with pytest.raises(UserError, match="ended Complete"):
        await service.resume(batch_id, "sup.bob", "again", as_person(seeded, "sup.bob"))
