"""The checks before a batch may start, in one service: the recipe is the approved, effective version byte for byte,
the operator is trained and aseptically qualified, the material lots are approved, unexpired and the right ones,
the line is cleaned and cleared by a second person, and (production) the line's APS is valid.

`check_start` refuses with one line naming everything missing; `commit_start` uses the line clearance. The
returned `StartDecision.record` is written into the batch as its `master_data` entry at start.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from fillfinish.masterdata import MasterDataError
from fillfinish.masterdata.aps import aps_problems, line_status
from fillfinish.masterdata.cleaning import Clearance, cleaning_problems, clearance_problems, use_clearance
from fillfinish.masterdata.materials import Lot, lot_problems
from fillfinish.masterdata.recipes_control import effective_version
from fillfinish.masterdata.signing import as_utc, iso
from fillfinish.masterdata.training import qualification_problems
from fillfinish.recipes.loader import LoadedRecipe
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_registry import IssuedLot
from fillfinish.record.vocabulary import EntryData, MasterData, Outcome, typed

__all__ = ["StartRefused", "StartDecision", "TipOptions", "check_start", "commit_start", "start_batch",
           "use_clearance_for", "finish_batch"]


class StartRefused(MasterDataError):
    """The master data do not allow this batch to start; the message lists what is missing."""


@dataclass(frozen=True)
class TipOptions:
    """The legacy `--tip-lot/--tip-cycle/--tip-expiry` options: the lot maps to the `tips` material lot and the cycle
    and expiry, when given, must match what was received."""

    lot: str | None = None
    cycle: str | None = None
    expiry: str | None = None


@dataclass
class StartDecision:
    """What the checks found and what the batch records at start."""

    record: dict[str, Any]
    lots: dict[str, Lot]
    clearance: Clearance | None
    tip_lot: tuple[str, str, str] | None = None  # (lot, sterilisation cycle id, expiry) for the controller
    materials: dict[str, str] = field(default_factory=dict)


def check_start(store: RecordStore, site: Any, loaded: LoadedRecipe, *, operator: str, vials: int,
                materials: dict[str, str], now: float | dt.datetime, tips: TipOptions | None = None) -> StartDecision:
    """Run every master-data check before a batch of `loaded` by `operator` at `now` (the batch's clock).

    `site` is the SiteConfig (its `master_data` settings and the legacy `[site] aps_last_success`). Raises
    StartRefused naming every missing item, or returns the decision to record.
    """
    settings = site.master_data
    day = as_utc(now).date()
    recipe = loaded.recipe
    chosen = dict(materials)
    problems: list[str] = []
    if tips is not None and tips.lot:
        if chosen.get("tips", tips.lot) != tips.lot:
            problems.append(f"--tip-lot {tips.lot} and --material tips={chosen['tips']} disagree")
        chosen["tips"] = tips.lot
    try:
        version = effective_version(store, loaded, day)
    except MasterDataError as exc:
        problems.append(str(exc))
        version = None
    qual, evidence = qualification_problems(store, operator, recipe, day, settings)
    problems += qual
    lot_issues, lots = lot_problems(store, recipe, chosen, day, vials, settings.floor)
    problems += lot_issues
    tip = lots.get("tips")
    if tip is not None and tips is not None:
        if tips.cycle and tips.cycle != tip.sterilisation_cycle_id:
            problems.append(f"--tip-cycle {tips.cycle} is not tip lot {tip.lot}'s sterilisation cycle "
                            f"{tip.sterilisation_cycle_id}")
        if tips.expiry and tips.expiry != tip.expiry.isoformat():
            problems.append(f"--tip-expiry {tips.expiry} is not tip lot {tip.lot}'s expiry {tip.expiry}")
    clean, cleaning = cleaning_problems(store, settings, now)
    problems += clean
    clear, clearance = clearance_problems(store, settings, operator, now)
    problems += clear
    aps = line_status(store, settings, getattr(getattr(site, "site", None), "aps_last_success", None))
    if recipe.recipe.mode == "production":
        problems += aps_problems(aps, day, settings.line_id)
    if problems:
        raise StartRefused("; ".join(problems))
    assert version is not None
    record = {
        "checked_at": iso(now),
        "line_id": settings.line_id,
        "recipe": version.summary(),
        "operator": {"user": operator, "qualification": evidence},
        "materials": {slot: lot.summary() for slot, lot in lots.items()},
        "cleaning": {"entry": cleaning.seq, "at": iso(cleaning.cleaned_at), "procedure": cleaning.procedure,
                     "agent_lot": cleaning.agent_lot, "by": cleaning.by} if cleaning else None,
        "line_clearance": {"entry": clearance.seq, "at": iso(clearance.at), "by": clearance.by} if clearance else None,
        "aps": aps.as_record(),
    }
    tip_lot = (tip.lot, tip.sterilisation_cycle_id or "", tip.expiry.isoformat()) if tip is not None else None
    return StartDecision(record, lots, clearance, tip_lot, {slot: lot.lot for slot, lot in lots.items()})


def commit_start(store: RecordStore, decision: StartDecision, lot: str, operator: str) -> None:
    """Use the line clearance for this batch (the next batch needs a new one)."""
    if decision.clearance is not None:
        use_clearance(store, decision.clearance, lot, operator)


def start_batch(db_url: str, site: Any, loaded: LoadedRecipe, *, operator: str, vials: int, lot: str,
                materials: dict[str, str], tip_lot: Any = None) -> StartDecision:
    """Open the record on the site's clock and run `check_start`; `tip_lot` is the legacy TipLot (lot,
    sterilisation_cycle_id, expiry) given on the command line, or None. `use_clearance_for` follows once the line
    is open, right before the batch is created."""
    from fillfinish.clock import Clock

    clock = Clock(site.clock.speed, site.clock.epoch, site.clock.timeline)
    tips = TipOptions(tip_lot.lot, tip_lot.sterilisation_cycle_id, tip_lot.expiry) if tip_lot is not None else None
    with RecordStore(db_url, now=clock.now) as store:
        return check_start(store, site, loaded, operator=operator, vials=vials, materials=materials,
                           now=clock.now(), tips=tips)


def use_clearance_for(db_url: str, site: Any, decision: StartDecision, lot: str, operator: str) -> None:
    """Right before the batch is created: mark the line clearance used by it (see `commit_start`)."""
    from fillfinish.clock import Clock

    clock = Clock(site.clock.speed, site.clock.epoch, site.clock.timeline)
    with RecordStore(db_url, now=clock.now) as store:
        commit_start(store, decision, lot, operator)


def finish_batch(db_url: str, batch_id: str, decision: StartDecision | None, site: Any) -> dict[str, Any] | None:
    """After the batch (run, resume or abort alike): reconcile the vial lot (issued = used + rejected + returned),
    deduct the bulk drawn and mark the lots consumed. The lots are read from the batch's own master-data entry when
    no start decision is at hand (a resumed or aborted batch); a batch already reconciled is left as it is (None)."""
    from fillfinish.clock import Clock

    clock = Clock(site.clock.speed, site.clock.epoch, site.clock.timeline)
    with RecordStore(db_url, now=clock.now) as store:
        return reconcile_batch(store, batch_id, decision.materials if decision is not None else None)


def reconcile_batch(store: RecordStore, batch_id: str, lots: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Reconcile `batch_id` once from its record (see `finish_batch`); None when it has no lots or is reconciled.

    The entries are read in pages in one pass (a 10,000-vial batch is not held in memory)."""
    from fillfinish.batch.history import BatchHistory
    from fillfinish.masterdata.materials import reconcile
    from fillfinish.record.entry_stream import iter_entries

    seen = _ReconcileFacts()
    history = BatchHistory.from_entries(seen.watch(iter_entries(store, batch_id)))
    if seen.reconciled:
        return None
    lots = lots if lots is not None else seen.lots
    if not lots:
        return None
    counts = history.counts
    return reconcile(store, batch_id, lots, store.batch(batch_id).planned_vials, counts["accepted"],
                     counts["rejected"] + counts["uncertain"], bulk_drawn_ml=seen.drawn_ul / 1000.0)


class _ReconcileFacts:
    """What the reconciliation needs from a batch's entries, gathered while they stream past the history fold."""

    def __init__(self) -> None:
        self.reconciled = False
        self.lots: dict[str, str] = {}
        self.drawn_ul = 0.0

    def watch(self, entries: Any) -> Any:
        """Yield `entries` unchanged, noting the lots issued, the bulk drawn and an earlier reconciliation."""
        for e in entries:
            if e.kind == "material_reconciliation":
                self.reconciled = True
            elif e.kind in ("master_data", "outcome"):  # read typed (strict, like the history the entries go to)
                self._note(typed(e))
            yield e

    def _note(self, d: EntryData) -> None:
        """The lots issued (from the master-data entry) or the bulk drawn by an aspirate outcome (uL)."""
        if isinstance(d, MasterData):
            self.lots = {slot: issued.lot for slot, issued in _issued_lots(d.materials).items() if issued.lot}
        elif isinstance(d, Outcome) and d.action == "aspirate" and d.ok:
            self.drawn_ul += float(d.aspirated_ul or 0.0)


def _issued_lots(materials: dict[str, Any]) -> dict[str, IssuedLot]:
    """The master-data entry's material slots read as IssuedLot (a slot that is not a lot summary is left out)."""
    out = {}
    for slot, summary in materials.items():
        try:
            out[slot] = IssuedLot.model_validate(summary)
        except ValidationError:
            continue
    return out
