"""`fillfinish demo` as a service: start the simulator, give a demo record its own master data, run one batch through
the batch service, stop the simulator. On a site's record (accounts other than demo.*) the person logs in and the
site's own master data apply, as for `run` (issue 6.6); a demo record gets demo.* accounts and signed master data."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fillfinish.batch.authority import PasswordSource, site_accounts
from fillfinish.batch.controller import BatchOutcome
from fillfinish.batch.service import BatchService, SessionOptions, StartRequest
from fillfinish.clock import Clock
from fillfinish.config import SiteConfig
from fillfinish.errors import UserError
from fillfinish.inputs import load_config
from fillfinish.masterdata.demo import Prepared
from fillfinish.recipes.loader import LoadedRecipe


@dataclass(frozen=True)
class DemoRequest:
    """One demo batch: recipe, vials, simulator speed (simulated s per real s; `timeline` for --speed max), an
    optional fault script, and the operator (demo.* on a demo record)."""

    recipe: LoadedRecipe
    vials: int
    rate: float
    timeline: bool
    operator: str
    faults: Path | None = None


async def run_demo(request: DemoRequest, db_url: str, *, password: PasswordSource,
                   options: SessionOptions) -> BatchOutcome:
    """Run a whole batch on a simulator started for it in a child process (fillfinish/sim_child.py: it runs on the
    other core, as a real line's devices are other machines); `password` is asked only on a site's record."""
    from fillfinish.sim_child import simulator_child

    refusal = request.recipe.recipe.fill.vials_refusal(request.vials)
    if refusal is not None:  # before the simulator starts
        raise UserError(f"--vials {refusal}")
    speed = "max" if request.timeline else f"{request.rate:g}"
    with tempfile.TemporaryDirectory(prefix="fillfinish-demo-") as tmp:
        with simulator_child(Path(tmp), speed=speed, database_url=db_url, faults=request.faults,
                             density_g_ml=request.recipe.recipe.fill.density_g_ml) as site_toml:
            config = load_config(site_toml)
            if options.notify is not None:
                shown = "max (shared timeline)" if request.timeline else f"x{request.rate:g}"
                options.notify(f"simulator: pump {config.dispenser.port}, balance {config.balance.port}, PLC "
                               f"{config.plc.endpoint}, speed {shown}")
            start = _demo_start(config, request, db_url, password)
            return await BatchService(config, db_url, options).start(start)


def _demo_start(config: SiteConfig, request: DemoRequest, db_url: str, password: PasswordSource) -> StartRequest:
    """The start request: on a site's record the person's own login and lots; on a demo record the demo's own
    accounts and signed master data, prepared now on the simulator's clock."""
    lot = f"DEMO-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
    if site_accounts(db_url):
        return StartRequest(request.recipe, lot, request.vials, request.operator, password=password,
                            source=str(request.recipe.path), what="start a demo batch")
    if not request.operator.startswith("demo."):
        raise UserError(f"--operator {request.operator}: the demo creates its own accounts, named demo.*; allowed: "
                        "a demo.* name, or a record with user accounts and a login")
    prepared = _demo_master_data(config, request, db_url)
    secret = prepared.passwords[request.operator]
    return StartRequest(request.recipe, lot, request.vials, request.operator, password=lambda: secret,
                        materials=prepared.materials, source=str(request.recipe.path), what="start a batch (demo)")


def _demo_master_data(config: SiteConfig, request: DemoRequest, db_url: str) -> Prepared:
    """The demo's own master data (demo accounts, approved recipe, trained operator, approved lots, cleaning,
    clearance by a second person) on the simulator's clock, so `fillfinish demo` needs no set-up."""
    from fillfinish.masterdata import MasterDataError
    from fillfinish.masterdata.demo import prepare
    from fillfinish.people import PeopleError
    from fillfinish.record.store import RecordStore

    clock = Clock(config.clock.speed, config.clock.epoch, config.clock.timeline)
    try:
        with RecordStore(db_url, now=clock.now) as store:
            return prepare(store, [request.recipe.path], request.operator, clock.now(),
                           line_id=config.master_data.line_id, planned_vials=max(request.vials, 1000))
    except (MasterDataError, PeopleError) as exc:
        raise UserError(f"demo master data: {exc}") from None
