"""The record vocabulary of master data, people and quality: the kinds that registries and QA services write.

Registries (fillfinish/record/registry.py: REG-RECIPES, REG-MATERIALS, REG-ACCOUNTS, ...) and the QA services
(viable monitoring, media fill, deviations, release, purge) write these kinds; `RecordStore.append` validates every
one against its model like the batch kinds in fillfinish/record/vocabulary.py, so a registry cannot write an
undeclared kind or field. Imported by vocabulary.py, so `VOCABULARY` always holds them.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from fillfinish.record.vocabulary import EntryData, Number, _f, entry_kind

SIGNATURE_DOC = "the signature manifestation: name, user_id, role, meaning, reason, authenticated (11.50)"


# ------------------------------------------------------------------------------------------------ REG-RECIPES
@entry_kind("recipe_imported", "A recipe version imported into REG-RECIPES by its author (status draft).")
class RecipeImported(EntryData):
    name: str = _f("recipe name")
    version: int = _f("recipe version (whole number)")
    sha256: str = _f("SHA-256 of the recipe file bytes (hex)")
    text: str = _f("the recipe file text (TOML)")
    mode: str = _f("production | media_fill | ...")
    product_code: str = _f("the product code")
    source: str = _f("the file it was imported from")
    author: str = _f("the author's user id")
    signature: dict[str, Any] = _f(SIGNATURE_DOC)


@entry_kind("recipe_approved", "A recipe version approved by QA (effective from a date; the older version retires).")
class RecipeApproved(EntryData):
    name: str = _f("recipe name")
    version: int = _f("recipe version")
    sha256: str = _f("SHA-256 of the approved text (hex)")
    effective_from: str = _f("effective date (ISO)")
    site_floor: Optional[dict[str, Any]] = _f("the site floor limits it was checked against", None)
    old: dict[str, Any] = _f("the status before")
    new: dict[str, Any] = _f("the status after")
    signature: dict[str, Any] = _f(SIGNATURE_DOC)


@entry_kind("recipe_retired", "A recipe version retired by QA (no new batch may use it).")
class RecipeRetired(EntryData):
    name: str = _f("recipe name")
    version: int = _f("recipe version")
    sha256: str = _f("SHA-256 of the text (hex)")
    reason: str = _f("why it was retired")
    old: dict[str, Any] = _f("the status before")
    new: dict[str, Any] = _f("the status after")
    signature: dict[str, Any] = _f(SIGNATURE_DOC)


# ------------------------------------------------------------------------------------------------ REG-TRAINING
@entry_kind("training_recorded", "A person's training (or media-fill participation) signed by a trainer.")
class TrainingRecorded(EntryData):
    user: str = _f("the trained person's user id")
    what: str = _f("sop | aseptic | mediafill | ...")
    subject: str = _f("the SOP or subject trained")
    trained_on: str = _f("training date (ISO)")
    valid_until: str = _f("valid until (ISO date)")
    signature: dict[str, Any] = _f(SIGNATURE_DOC)


# ------------------------------------------------------------------------------------------------ REG-MATERIALS
@entry_kind("material_received", "A material lot received into quarantine, with supplier, expiry and certificate.")
class MaterialReceived(EntryData):
    lot: str = _f("the internal lot id")
    material: str = _f("material slot (vials, stoppers, tips, product, ...)")
    supplier: str = _f("supplier")
    supplier_lot: str = _f("the supplier's lot")
    quantity: Number = _f("quantity received (in `unit`)")
    unit: str = _f("unit of the quantity (pcs, mL, ...)")
    expiry: str = _f("expiry (ISO date)")
    certificate: str = _f("the certificate of analysis/conformity reference")
    animal_origin_free: Optional[bool] = _f("true when certified animal-origin free", None)
    concentration_mg_ml: Optional[Number] = _f("product concentration (mg/mL)", None)
    product_code: Optional[str] = _f("the product code the lot is for", None)
    sterilisation_cycle_id: Optional[str] = _f("the supplier's sterilisation cycle (pre-sterilised items)", None)
    status: str = _f("quarantine")
    signature: dict[str, Any] = _f(SIGNATURE_DOC)


class _MaterialDecision(EntryData):
    """QA's decision on a quarantined lot."""

    lot: str = _f("the lot")
    reason: str = _f("QA's reason (required for a rejection)")
    old: dict[str, Any] = _f("the status before")
    new: dict[str, Any] = _f("the status after")
    signature: dict[str, Any] = _f(SIGNATURE_DOC)


@entry_kind("material_approved", "QA approved a quarantined material lot for use.")
class MaterialApproved(_MaterialDecision):
    """Approval of a lot."""


@entry_kind("material_rejected", "QA rejected a quarantined material lot.")
class MaterialRejected(_MaterialDecision):
    """Rejection of a lot."""


@entry_kind("material_consumed", "A lot issued to a batch: issued = used + rejected + returned (vials: pcs; bulk or "
            "media: mL drawn into the syringe, primes and rejected vials included).")
class MaterialConsumed(EntryData):
    lot: str = _f("the lot")
    batch_id: str = _f("the batch it was issued to")
    issued: Number = _f("quantity issued (pcs for vials, mL for bulk/media)")
    used: Number = _f("quantity used (pcs, or mL drawn)")
    rejected: Number = _f("quantity rejected (pcs)")
    returned: Number = _f("quantity returned (pcs)")


# ------------------------------------------------------------------------------------------------ cleaning, clearance
@entry_kind("cleaning_recorded", "A line cleaning: procedure, cleaning agent lot, time, by whom (REG-CLEANING).")
class CleaningRecorded(EntryData):
    line_id: str = _f("the line")
    procedure: str = _f("cleaning SOP")
    agent_lot: str = _f("cleaning agent lot")
    cleaned_at: str = _f("when (ISO-8601 UTC)")
    signature: dict[str, Any] = _f(SIGNATURE_DOC)


@entry_kind("clearance_confirmed", "A line clearance confirmed by a second person (REG-CLEARANCE).")
class ClearanceConfirmed(EntryData):
    line_id: str = _f("the line")
    checks: list[str] = _f("the clearance checks confirmed")
    signature: dict[str, Any] = _f(SIGNATURE_DOC)


@entry_kind("clearance_used", "A line clearance used by a batch start (one clearance, one batch).")
class ClearanceUsed(EntryData):
    line_id: str = _f("the line")
    clearance_entry: int = _f("seq of the clearance_confirmed entry")
    lot: str = _f("the batch lot that used it")
    operator: str = _f("the operator's user id")


# ------------------------------------------------------------------------------------------------ people, access, line
@entry_kind("account", "A change of a user account (REG-ACCOUNTS): created, role, disabled, password, lock, baseline.")
class AccountEvent(EntryData):
    user: str = _f("the account's user id")
    event: str = _f("created | role_changed | disabled | enabled | password_set | locked_out | baseline | ...")
    old: dict[str, Any] = _f("values before")
    new: dict[str, Any] = _f("values after")
    reason: str = _f("why")
    state: dict[str, Any] = _f("the account's resulting state (role, enabled, locked, password hash digest, ...)")


@entry_kind("plc_alarm", "The PLC's latched alarm found when a line was opened (watchdog trip while unattended).")
class PlcAlarm(EntryData):
    line: str = _f("the line id")
    watchdog_tripped: bool = _f("true when the PLC's watchdog tripped")
    message: str = _f("the PLC's alarm text")
    plc_time: Any = _f("the PLC's time stamp of the alarm (as the PLC gives it)", None)
    source: str = _f("plc")


# ------------------------------------------------------------------------------------------------ quality in a batch
@entry_kind("viable_result", "A viable monitoring result (settle plate, air sample, glove print) read after "
            "incubation, against its grade's limits.")
class ViableResult(EntryData):
    sample_id: str = _f("the planned sample's id")
    sample_type: str = _f("settle_plate | air | glove | surface")
    location: str = _f("where it was taken")
    grade: str = _f("A | B | C | D")
    cfu: int = _f("colony forming units counted (CFU)")
    unit: str = _f("the unit of the count and limits (CFU/plate, CFU/m3, ...)")
    incubation_start: str = _f("incubation start (ISO-8601 UTC)")
    incubation_end: str = _f("incubation end (ISO-8601 UTC)")
    medium_lot: str = _f("culture medium lot")
    reader: str = _f("the reader's user id")
    reader_name: str = _f("the reader's printed name")
    organism: str = _f("identified organism (empty when none)")
    limits: dict[str, Any] = _f("alert, action (CFU in `unit`) and their text")
    level: str = _f("ok | alert | action")
    supersedes: Optional[int] = _f("seq of the result this one corrects", None)
    correction: Optional[str] = _f("why the earlier result is corrected", None)


@entry_kind("viable_verified", "A second person verified a viable monitoring result.")
class ViableVerified(EntryData):
    sample_id: str = _f("the sample's id")
    result_entry: int = _f("seq of the viable_result entry")
    cfu: int = _f("the verified count (CFU)")
    verified_by: str = _f("the verifier's user id")
    name: str = _f("the verifier's printed name")


@entry_kind("mediafill_result", "A media fill (APS) outcome: units incubated, growth, passed; in the batch and, in "
            "short, in REG-MEDIAFILL for the operators' qualification.")
class MediaFillResult(EntryData):
    passed: bool = _f("true when zero growth and every unit accounted for")
    operators: list[str] = _f("the people who performed the media fill")
    line_id: Optional[str] = _f("the line", None)
    units_filled: Optional[int] = _f("batch: units filled", None)
    incubated: Optional[int] = _f("batch: units incubated", None)
    growth: Optional[int] = _f("batch: units with growth", None)
    not_incubated: Optional[int] = _f("batch: units not incubated (justified)", None)
    justification: Optional[str] = _f("batch: why units were not incubated", None)
    accounted: Optional[bool] = _f("batch: filled = incubated + not incubated", None)
    reasons: Optional[list[str]] = _f("batch: why it failed", None)
    reader: Optional[str] = _f("batch: who read the units", None)
    verifier: Optional[str] = _f("batch: who verified the reading", None)
    batch_id: Optional[str] = _f("registry: the media-fill batch", None)
    result_at: Optional[str] = _f("registry: when the result was recorded (ISO)", None)


@entry_kind("rejection", "QA's rejection of the batch, signed, with the reason and the retention date.")
class Rejection(EntryData):
    decision: Literal["rejected"] = _f("rejected")
    verdict: Optional[str] = _f("the final verdict", None)
    suitable: bool = _f("false")
    disposition_entry: Optional[int] = _f("seq of the disposition entry", None)
    reasons: list[Any] = _f("the verdict's reasons")
    reconciliation: dict[str, Any] = _f("the reconciliation")
    decided_by: str = _f("QA user id")
    rejected_by: str = _f("QA user id")
    name: str = _f("QA printed name")
    signature_entry: int = _f("seq of the QA signature")
    signature_hash: str = _f("hash of the QA signature")
    ledger_anchor: Optional[str] = _f("global_seq:hash of the ledger head", None)
    comment: str = _f("QA's comment")
    expiry: str = _f("product expiry (ISO date)")
    retention_until: str = _f("keep the record until (ISO date)")
    retention_rules: dict[str, str] = _f("each retention rule's date")
    retained_samples: dict[str, Any] = _f("retained vials and where they are kept")
    reason: str = _f("why the batch is rejected")
    open_deviations: list[Optional[str]] = _f("numbers of deviations still open at the rejection")


# ------------------------------------------------------------------------------------------------ QA registries
@entry_kind("deviation_number", "A deviation number given to a batch's deviation (REG-DEVIATIONS).")
class DeviationNumber(EntryData):
    number: str = _f("the deviation number (prefix-year-nnn)")
    batch_id: str = _f("the batch")
    opened_entries: list[int] = _f("seqs of the batch's deviation entries it numbers")


@entry_kind("legal_hold", "A legal hold on a batch record placed or released (REG-PURGE): no purge while held.")
class LegalHold(EntryData):
    batch_id: str = _f("the batch")
    event: Literal["placed", "released"] = _f("placed | released")
    reason: str = _f("why")


@entry_kind("tombstone", "A purged batch record: what was removed and the digests that prove it (REG-PURGE).")
class Tombstone(EntryData):
    batch_id: str = _f("the purged batch")
    product: str = _f("its product")
    lot: str = _f("its lot")
    mode: str = _f("its mode")
    header_hash: str = _f("its header hash")
    entries: int = _f("entries removed")
    last_hash: Optional[str] = _f("hash of its last entry", None)
    ledger_rows: int = _f("ledger rows of the batch")
    ledger_digest: str = _f("sha256 over its ledger rows")
    retention_until: Optional[str] = _f("its retention date (ISO)", None)
    purged_on: str = _f("purge date (ISO)")
    purged_by: str = _f("QA user id")
    name: str = _f("QA printed name")
    reason: str = _f("why")
