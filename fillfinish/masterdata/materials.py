"""Material lots (EU GMP 5.x, 21 CFR 211.84): received into quarantine, approved or rejected by QA signature, issued
to a batch, reconciled after it.

Registry `materials`, entry kinds:
- `material_received` {lot, material, supplier, supplier_lot, quantity, unit, expiry, certificate,
  animal_origin_free, concentration_mg_ml, product_code, sterilisation_cycle_id, signature}
- `material_approved` / `material_rejected` {lot, reason, signature (QA)}
- `material_consumed` {lot, batch_id, issued, used, rejected, returned}
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fillfinish.masterdata import MasterDataError
from fillfinish.masterdata.settings import SiteFloor
from fillfinish.masterdata.signing import authenticate, signature
from fillfinish.recipes.schema import Recipe
from fillfinish.record.registry import append_registry
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_registry import read_registry, signer
from fillfinish.record.vocabulary_registries import MaterialApproved, MaterialConsumed, MaterialReceived, \
    MaterialRejected

REGISTRY = "materials"
MATERIALS = ("bulk", "vial", "stopper", "cap", "tips", "media")
RECEIVER_ROLES = ("operator", "supervisor", "qa", "admin")
QA_ROLES = ("qa",)
OPTIONAL = ("cap",)  # a recipe does not require it; a lot given is checked and recorded like the others
UNITS = {"bulk": "mL", "media": "mL"}  # everything else is counted in pieces


@dataclass
class Lot:
    """A material lot as the registry says it is now."""

    lot: str
    material: str
    supplier: str
    supplier_lot: str
    quantity: float
    unit: str
    expiry: dt.date
    certificate: str
    animal_origin_free: bool | None
    concentration_mg_ml: float | None
    product_code: str | None
    sterilisation_cycle_id: str | None
    received_by: str
    received_seq: int
    status: str = "quarantine"  # quarantine, approved, rejected
    decided_by: str | None = None
    decision_seq: int | None = None
    consumed: float = 0.0
    batches: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> float:
        """Quantity not yet used or rejected by batches."""
        return self.quantity - self.consumed

    def summary(self) -> dict[str, Any]:
        """JSON-able form (list and the batch's master-data entry)."""
        return {"lot": self.lot, "material": self.material, "supplier": self.supplier,
                "supplier_lot": self.supplier_lot, "quantity": self.quantity, "unit": self.unit,
                "remaining": self.remaining, "expiry": self.expiry.isoformat(), "certificate": self.certificate,
                "animal_origin_free": self.animal_origin_free, "concentration_mg_ml": self.concentration_mg_ml,
                "product_code": self.product_code, "sterilisation_cycle_id": self.sterilisation_cycle_id,
                "status": self.status, "approved_by": self.decided_by, "approval_entry": self.decision_seq}


def lots(store: RecordStore) -> dict[str, Lot]:
    """Fold the `materials` registry into the current state of every lot."""
    state: dict[str, Lot] = {}
    for row in read_registry(store, REGISTRY):
        d = row.data
        if isinstance(d, MaterialReceived):
            state[d.lot] = Lot(d.lot, d.material, d.supplier, d.supplier_lot, float(d.quantity), d.unit,
                               dt.date.fromisoformat(d.expiry), d.certificate, d.animal_origin_free,
                               d.concentration_mg_ml, d.product_code, d.sterilisation_cycle_id,
                               signer(d.signature).user_id, row.seq)
        elif isinstance(d, (MaterialApproved, MaterialRejected)) and d.lot in state:
            lot = state[d.lot]
            lot.status = "approved" if isinstance(d, MaterialApproved) else "rejected"
            lot.decided_by, lot.decision_seq = signer(d.signature).user_id, row.seq
        elif isinstance(d, MaterialConsumed) and d.lot in state:
            state[d.lot].consumed += float(d.used) + float(d.rejected)
            state[d.lot].batches.append(d.batch_id)
    return state


def receive(store: RecordStore, *, lot: str, material: str, supplier: str, supplier_lot: str, quantity: float,
            expiry: dt.date, certificate: str, user: str, password: str, animal_origin_free: bool | None = None,
            concentration_mg_ml: float | None = None, product_code: str | None = None,
            sterilisation_cycle_id: str | None = None) -> Lot:
    """Receive a lot into quarantine (who, supplier, supplier lot, quantity, expiry, certificate, AOF statement)."""
    what = f"receive lot {lot}"
    if material not in MATERIALS:
        raise MasterDataError(f"{what}: material '{material}' is not allowed; allowed: {', '.join(MATERIALS)}")
    if not lot.strip() or lot in lots(store):
        raise MasterDataError(f"{what}: the lot id must be new and not empty (lot ids are never reused)")
    for name, value in (("--supplier", supplier), ("--supplier-lot", supplier_lot), ("--certificate", certificate)):
        if not value.strip():
            raise MasterDataError(f"{what}: {name} is required")
    if not quantity > 0:
        raise MasterDataError(f"{what}: --quantity must be > 0")
    if material == "bulk" and (concentration_mg_ml is None or concentration_mg_ml <= 0):
        raise MasterDataError(f"{what}: protein bulk needs --concentration (mg/mL, > 0)")
    if material == "tips" and not sterilisation_cycle_id:
        raise MasterDataError(f"{what}: a pre-sterilised tip lot needs --sterilisation-cycle (its cycle id)")
    account = authenticate(store, user, password, RECEIVER_ROLES, what)
    append_registry(store, REGISTRY, "material_received", {
        "lot": lot, "material": material, "supplier": supplier, "supplier_lot": supplier_lot,
        "quantity": quantity, "unit": UNITS.get(material, "pcs"), "expiry": expiry.isoformat(),
        "certificate": certificate, "animal_origin_free": animal_origin_free,
        "concentration_mg_ml": concentration_mg_ml, "product_code": product_code,
        "sterilisation_cycle_id": sterilisation_cycle_id, "status": "quarantine",
        "signature": signature(account, "received")}, account.username)
    return lots(store)[lot]


def decide(store: RecordStore, lot: str, approve: bool, user: str, password: str, reason: str = "") -> Lot:
    """QA releases a quarantined lot for use, or rejects it (a rejected lot is never used)."""
    verb = "approve" if approve else "reject"
    what = f"{verb} lot {lot}"
    current = lots(store).get(lot)
    if current is None:
        raise MasterDataError(f"{what}: unknown lot; `fillfinish material receive` it first")
    if current.status != "quarantine":
        raise MasterDataError(f"{what}: the lot is already {current.status}")
    if not approve and not reason.strip():
        raise MasterDataError(f"{what}: --reason is required")
    account = authenticate(store, user, password, QA_ROLES, what)
    append_registry(store, REGISTRY, f"material_{verb}d" if approve else "material_rejected", {
        "lot": lot, "reason": reason, "old": {"status": current.status},
        "new": {"status": "approved" if approve else "rejected"},
        "signature": signature(account, "approved" if approve else "rejected", reason)}, account.username)
    return lots(store)[lot]


def required_materials(recipe: Recipe) -> tuple[str, ...]:
    """The materials a recipe names: its liquid (protein bulk, or media for a media fill), vials, stoppers, and the
    dispensing tips when it needs a pre-sterilised tip lot."""
    liquid = "media" if recipe.recipe.mode == "media_fill" else "bulk"
    needed = (liquid, "vial", "stopper")
    return needed + (("tips",) if recipe.tips.require_presterilised_lot else ())


def lot_problems(store: RecordStore, recipe: Recipe, chosen: dict[str, str], day: dt.date, vials: int,
                 floor: SiteFloor) -> tuple[list[str], dict[str, Lot]]:
    """Why the chosen lots may not be used for this recipe on `day` (empty when they may) and the lots."""
    from fillfinish.masterdata.recipes_control import is_ctg

    known = lots(store)
    problems: list[str] = []
    used: dict[str, Lot] = {}
    for slot in chosen:
        if slot not in MATERIALS:
            problems.append(f"--material {slot}=...: '{slot}' is not a material; allowed: {', '.join(MATERIALS)}")
    required = required_materials(recipe)
    optional = tuple(slot for slot in OPTIONAL if slot in chosen)  # checked and recorded when given
    for slot in required + optional:
        lot_id = chosen.get(slot)
        if not lot_id:
            problems.append(f"no {slot} lot given (--material {slot}=LOT)")
            continue
        lot = known.get(lot_id)
        if lot is None:
            problems.append(f"{slot} lot {lot_id} is not in the record (`fillfinish material receive`)")
            continue
        if lot.material != slot:
            problems.append(f"lot {lot_id} is {lot.material}, not {slot} (wrong material)")
            continue
        if lot.status != "approved":
            state = "rejected by QA" if lot.status == "rejected" else "in quarantine, not approved by QA"
            problems.append(f"{slot} lot {lot_id} is {state}")
            continue
        if lot.expiry < day:
            problems.append(f"{slot} lot {lot_id} expired on {lot.expiry}")
            continue
        if slot == "bulk" and lot.product_code and lot.product_code != recipe.recipe.product_code:
            problems.append(f"bulk lot {lot_id} is for product {lot.product_code}, not {recipe.recipe.product_code}")
            continue
        if slot in ("bulk", "media") and (is_ctg(recipe, floor) or slot == "media") and lot.animal_origin_free \
                is not True:
            problems.append(f"{slot} lot {lot_id} has no animal-origin-free statement")
            continue
        if slot == "vial" and lot.remaining < vials:
            problems.append(f"vial lot {lot_id} has {lot.remaining:g} vials left, {vials} planned")
            continue
        need_ml = bulk_needed_ml(recipe, vials)
        if slot in ("bulk", "media") and lot.remaining < need_ml:
            problems.append(f"{slot} lot {lot_id} has {lot.remaining:g} mL left, {need_ml:g} mL needed ({vials} vials x "
                            f"{recipe.fill.fill_volume_ul:g} uL + prime {recipe.fill.prime_volume_ul:g} uL)")
            continue
        used[slot] = lot
    return problems, used


def bulk_needed_ml(recipe: Any, vials: int) -> float:
    """Bulk a batch of `vials` draws at least: every fill volume plus the prime to waste (mL)."""
    return (vials * recipe.fill.fill_volume_ul + recipe.fill.prime_volume_ul) / 1000.0


def reconcile(store: RecordStore, batch_id: str, issued: dict[str, str], planned: int, filled: int,
              rejected: int, actor: str = "system", bulk_drawn_ml: float = 0.0) -> dict[str, Any]:
    """After a batch: vials issued = used (filled) + rejected + returned; the bulk drawn into the syringe (mL,
    primes and rejected vials included) is deducted from the bulk lot. Written in the batch and the lots' registry."""
    vial_lot = issued.get("vial")
    rec: dict[str, Any] = {"lots": issued}
    liquid = "media" if issued.get("media") and not issued.get("bulk") else "bulk"
    if issued.get(liquid):
        rec["bulk"] = {"lot": issued[liquid], "drawn_ml": round(bulk_drawn_ml, 6)}
    if vial_lot:
        returned = planned - filled - rejected
        rec["vials"] = {"lot": vial_lot, "issued": planned, "used": filled, "rejected": rejected,
                        "returned": returned, "balanced": returned >= 0}
        append_registry(store, REGISTRY, "material_consumed", {
            "lot": vial_lot, "batch_id": batch_id, "issued": planned, "used": filled, "rejected": rejected,
            "returned": returned}, actor)
    for slot, lot_id in issued.items():
        if slot != "vial":
            used = round(bulk_drawn_ml, 6) if slot == liquid else 0
            append_registry(store, REGISTRY, "material_consumed", {"lot": lot_id, "batch_id": batch_id, "issued": used,
                                                                   "used": used, "rejected": 0, "returned": 0}, actor)
    store.append(batch_id, "material_reconciliation", rec, actor)
    return rec
