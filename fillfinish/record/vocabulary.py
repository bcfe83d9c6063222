"""The record's vocabulary: one typed definition per entry kind, validated on write, read back typed by consumers.

Each kind is a frozen pydantic model whose fields say what they hold, in which unit; extra fields are refused, so a
misspelt field or an undeclared kind fails at write time (RecordWriteError) instead of silently breaking a reader
(the old `t` field that the hold-time check read and the controller never wrote). `typed(entry)` gives consumers the
model back. docs/record-vocabulary.md is generated from these models (`python -m fillfinish.record.vocabulary`) and a
test keeps it equal. Modules that own a kind may declare it next to their code with `@entry_kind`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "EntryData",
    "VocabularyError",
    "VOCABULARY",
    "entry_kind",
    "validate_entry",
    "typed",
    "data_dictionary",
]

Scalar = Union[bool, int, float, str, None]
Number = Union[int, float]


class VocabularyError(ValueError):
    """Entry data that the vocabulary does not allow: an unknown kind, an unknown field, a wrong type."""


class EntryData(BaseModel):
    """Base of every entry kind: frozen, strict about field names (extra fields refused), units in field docs."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    KIND: ClassVar[str] = ""
    MEANING: ClassVar[str] = ""


VOCABULARY: dict[str, type[EntryData]] = {}
"""Entry kind -> its model. Filled by `@entry_kind`."""

M = TypeVar("M", bound=type[EntryData])


def entry_kind(kind: str, meaning: str) -> Callable[[M], M]:
    """Declare `kind` with its meaning; the decorated model is its one definition (a second one is an error)."""

    def register(model: M) -> M:
        if kind in VOCABULARY and VOCABULARY[kind] is not model:
            raise RuntimeError(f"entry kind {kind!r} is declared twice ({VOCABULARY[kind].__name__}, {model.__name__})")
        model.KIND = kind
        model.MEANING = meaning
        VOCABULARY[kind] = model
        return model

    return register


def _f(description: str, default: Any = ..., **kw: Any) -> Any:
    """A documented field (the description names the unit where there is one)."""
    return Field(default, description=description, **kw)


# ------------------------------------------------------------------------------------------------ machine and phases
@entry_kind("state", "A PackML state change of the machine (record first: written before the change takes effect).")
class StateChange(EntryData):
    from_: str = _f("PackML state left (e.g. Execute)", alias="from")
    to: str = _f("PackML state entered (e.g. Holding)")
    trigger: str = _f("command or event that caused the change (Hold, StateComplete, recovery, ...)")
    reason: Optional[str] = _f("why, in words (the operator's reason, the alarm, the guard)", None)


@entry_kind("command_refused", "A PackML command that was not valid in the current state, refused and recorded.")
class CommandRefusedData(EntryData):
    command: str = _f("the command name (Start, Hold, ...)")
    state: str = _f("the PackML state it was refused in")
    reason: str = _f("why it was refused")


@entry_kind("operator", "A PackML command given by a person, recorded before it is applied.")
class OperatorCommand(EntryData):
    command: str = _f("the command name (Hold, Unhold, Stop, Abort, Suspend, Unsuspend, Complete, ...)")
    reason: Optional[str] = _f("the person's reason", None)


@entry_kind("phase", "A phase of the sequence inside Execute started, finished or is repeated.")
class PhaseEvent(EntryData):
    phase: str = _f("line_checks | uv_cycle | tip_sterilisation | prime | fill | post_fill")
    event: Literal["start", "done", "repeat"] = _f("start, done, or repeat (the phase runs again)")
    reason: Optional[str] = _f("why a phase is repeated (e.g. an expired hold time)", None)


@entry_kind("run_start", "The batch run starts: lot, planned vials, recipe hash and the operator's signature.")
class RunStart(EntryData):
    lot: str = _f("the batch's lot number")
    planned_vials: int = _f("vials planned (count)")
    recipe_hash: str = _f("SHA-256 of the recipe file bytes (hex)")
    tip_lot: Optional[dict[str, Any]] = _f("pre-sterilised tip lot: lot, sterilisation_cycle_id, expiry", None)
    signature: dict[str, Any] = _f("the operator's signature: meaning, name, authenticated")


@entry_kind("master_data", "The master data the start checks found valid: recipe version and approver, the operator's "
            "qualification, material lots, cleaning, line clearance and APS (docs/master-data.md).")
class MasterData(EntryData):
    checked_at: str = _f("when the checks ran (ISO-8601 UTC, shared clock)")
    line_id: str = _f("the line")
    recipe: dict[str, Any] = _f("approved recipe version: name, version, sha256, author, approver, effective date")
    operator: dict[str, Any] = _f("the operator and the training/media-fill evidence that qualifies them")
    materials: dict[str, Any] = _f("material slot -> the approved lot used (supplier, expiry, certificate)")
    cleaning: Optional[dict[str, Any]] = _f("the valid line cleaning: entry, time, procedure, agent lot, by")
    line_clearance: Optional[dict[str, Any]] = _f("the line clearance by a second person: entry, time, by")
    aps: dict[str, Any] = _f("the line's APS qualification: last pass, source, valid until")


@entry_kind("material_reconciliation", "After the batch: material lots used; vials issued = used + rejected + "
            "returned.")
class MaterialReconciliation(EntryData):
    lots: dict[str, str] = _f("material slot -> lot issued to the batch")
    vials: Optional[dict[str, Any]] = _f("the vial lot: issued, used, rejected, returned, balanced", None)
    bulk: Optional[dict[str, Any]] = _f("the bulk lot and the volume drawn from it into the syringe, primes and "
                                        "rejected vials included (drawn_ml, mL)", None)


@entry_kind("line_check", "One check of line fitness before the UV cycle (devices, door, environment, APS, lamp).")
class LineCheck(EntryData):
    check: str = _f("check name (devices, door_closed, hepa, particles, aps_valid, lamp_life, ...)")
    ok: bool = _f("true when the check passed")
    detail: str = _f("what was seen, with units")


@entry_kind("monitoring", "Continuous environmental monitoring started or stopped.")
class MonitoringEvent(EntryData):
    event: str = _f("started | stopped")


@entry_kind("post_fill_monitoring", "The post-fill monitoring window ('immediately after' filling) began or ended.")
class PostFillMonitoring(EntryData):
    event: Literal["start", "end"] = _f("start or end of the window")
    window_s: Optional[Number] = _f("length of the window (s, simulated clock)", None)


# ------------------------------------------------------------------------------------------------ hardware actions
@entry_kind("intent", "Before a hardware action: what is about to be done (committed before the device is told).")
class Intent(EntryData):
    action: str = _f("position | dispense | aspirate | prime | initialise_pump | empty_to_waste | lamp_on | "
                     "lamp_off | door_lock | ...")
    vial: Optional[int] = _f("vial position (0 = home over the waste tray)", None)
    volume_ul: Optional[Number] = _f("volume to move (uL)", None)
    reason: Optional[str] = _f("why the action is taken", None)
    locked: Optional[bool] = _f("door_lock: the lock state asked for", None)


@entry_kind("outcome", "After a hardware action: what happened, linked to its intent by the intent's seq.")
class Outcome(EntryData):
    action: str = _f("the action of the intent")
    intent: int = _f("seq of the intent entry this outcome closes")
    ok: bool = _f("true when the action completed as intended")
    vial: Optional[int] = _f("vial position", None)
    delivered_ul: Optional[Number] = _f("volume the pump delivered (uL)", None)
    aspirated_ul: Optional[Number] = _f("volume drawn into the syringe (uL)", None)
    unknown: Optional[bool] = _f("true when the outcome cannot be known (link lost mid-dispense)", None)
    error: Optional[str] = _f("the device's error, when not ok", None)
    pump_firmware: Optional[str] = _f("initialise_pump: the pump's identity/firmware", None)
    balance_serial: Optional[str] = _f("initialise_pump: the balance's serial number", None)
    locked: Optional[bool] = _f("door_lock: the lock state read back", None)
    lamp_on: Optional[bool] = _f("lamp_on/lamp_off: the lamp state read back", None)
    switched_off: Optional[bool] = _f("lamp_on refused after the fact: the lamp was switched off again", None)


@entry_kind("safe_state", "The safe state was applied: lamp off, dispense terminated, positioner home; why.")
class SafeState(EntryData):
    action: str = _f("lamp_off | terminate | recovery | ...")
    ok: Optional[bool] = _f("true when the action was confirmed by the device", None)
    reason: Optional[str] = _f("why the safe state was needed", None)
    dispensing: Optional[bool] = _f("a dispense was running when it was applied", None)
    error: Optional[str] = _f("the device error when it could not be confirmed", None)
    step: Optional[str] = _f("the UV step (uv_cycle or tip) that switched the lamp off", None)
    cycle_id: Optional[str] = _f("the UV cycle's id", None)
    lamp_off: Optional[bool] = _f("recovery: the lamp was switched off", None)
    pump_terminated: Optional[bool] = _f("recovery: a running pump move was terminated", None)
    position: Optional[int] = _f("positioner_stop: the position it was held at", None)
    cause: Optional[str] = _f("recovery after a signal: the signal's name (SIGTERM, SIGINT)", None)
    plc_alarm: Optional[str] = _f("recovery: the PLC's latched alarm message found when the line was opened", None)


@entry_kind("shutdown", "The controller was told to stop (SIGTERM/SIGINT): the safe state follows and the batch rests "
            "Held (Stopped before Execute) for a person.")
class Shutdown(EntryData):
    reason: str = _f("why (the signal and what it means)")
    state: str = _f("PackML state when the signal came")
    phase: Optional[str] = _f("phase when the signal came", None)


@entry_kind("access_refused", "A login or command refused by the controller's OPC UA server: who, what, why.")
class AccessRefused(EntryData):
    what: str = _f("what was attempted (open a session, Command Abort, write a value, ...)")
    why: str = _f("why it was refused (role table, no signature, anonymous, ...)")
    channel: str = _f("where it came from (opcua)")
    role: Optional[str] = _f("the session user's role", None)
    reason: Optional[str] = _f("the reason the client gave with the command", None)
    claimed_user: Optional[str] = _f("a user id that is not a valid actor, as given (escaped when shown)", None)


# ------------------------------------------------------------------------------------------------ measurements
@entry_kind("measurement", "A measured value: a particle sample, a UV sensor reading, a tare weight.")
class Measurement(EntryData):
    signal: str = _f("particles | uv sensor name | tare")
    seq: Optional[int] = _f("particles: the counter's sample number", None)
    time: Optional[Number] = _f("particles: sample time (s, shared clock, Unix epoch)", None)
    per_m3_0_5um: Optional[Number] = _f("particles >= 0.5 um (particles/m3)", None)
    per_m3_5um: Optional[Number] = _f("particles >= 5 um (particles/m3)", None)
    flow_l_min: Optional[Number] = _f("particle counter sample flow (L/min)", None)
    irradiance_mw_cm2: Optional[Number] = _f("UV irradiance at the sensor (mW/cm2)", None)
    dose_mj_cm2: Optional[Number] = _f("UV dose so far (mJ/cm2)", None)
    cycle_id: Optional[str] = _f("UV cycle id", None)
    vial: Optional[int] = _f("tare: the vial position", None)
    value: Optional[Number] = _f("tare: the balance value (in `unit`)", None)
    unit: Optional[str] = _f("tare: the balance unit (g)", None)


@entry_kind("uv_start", "A UV exposure (enclosure cycle or tip station) starts; lamp id, hours and switch count.")
class UvStart(EntryData):
    cycle_id: str = _f("unique id of the UV cycle")
    step: str = _f("uv_cycle (enclosure) or tip (tip station)")
    sensor: str = _f("the UV sensor integrated for the dose")
    target_dose_mj_cm2: Number = _f("dose to reach at the worst-case point (mJ/cm2)")
    lamp_id: str = _f("the lamp's id")
    lamp_hours: Number = _f("lamp operating hours at start (h)")
    lamp_switch_count: int = _f("lamp switch-on count at start")


@entry_kind("uv_cycle", "A UV exposure completed: delivered dose, minimum irradiance, start and end.")
class UvCycle(EntryData):
    cycle_id: str = _f("unique id of the UV cycle")
    step: str = _f("uv_cycle or tip")
    sensor: str = _f("the UV sensor integrated")
    start: Number = _f("start (s, shared clock, Unix epoch)")
    end: Number = _f("end (s, shared clock, Unix epoch)")
    dose_mj_cm2: Number = _f("delivered dose (mJ/cm2)")
    target_dose_mj_cm2: Number = _f("target dose (mJ/cm2)")
    min_irradiance_mw_cm2: Number = _f("lowest irradiance after warm-up (mW/cm2)")
    lamp_id: str = _f("the lamp's id")
    lamp_hours: Number = _f("lamp hours at the end (h)")
    lamp_switch_count: int = _f("lamp switch-on count")


@entry_kind("tip_step", "The dispensing-tip sterilisation step: a pre-sterilised lot (recorded) and/or tip UV.")
class TipStep(EntryData):
    method: str = _f("presterilised_lot | uv")
    lot: Optional[str] = _f("the tip lot", None)
    sterilisation_cycle_id: Optional[str] = _f("the supplier's sterilisation cycle id", None)
    expiry: Optional[str] = _f("the tip lot's expiry (ISO date)", None)


# ------------------------------------------------------------------------------------------------ vials
@entry_kind("vial", "A vial's judgement: accepted, rejected or uncertain, with the reason and the check-weight.")
class VialJudgement(EntryData):
    vial: int = _f("vial position")
    status: Literal["accepted", "rejected", "uncertain"] = _f("the vial's status")
    reason: str = _f("why")
    weighed: Optional[bool] = _f("false when not weighed (sampling plan)", None)
    delivered_ul: Optional[Number] = _f("interrupted dispense: volume delivered before the terminate (uL)", None)
    net_g: Optional[Number] = _f("net weight (g)", None)
    expected_g: Optional[Number] = _f("expected weight = volume x density (g)", None)
    tolerance_g: Optional[Number] = _f("allowed |net - expected| (g)", None)
    volume_ul: Optional[Number] = _f("net weight as volume at the recipe's density (uL)", None)


@entry_kind("reconciliation", "planned = filled + rejected (incl. uncertain) + samples; unaccounted must be 0.")
class Reconciliation(EntryData):
    planned: int = _f("vials planned")
    filled: int = _f("vials accepted")
    rejected: int = _f("vials rejected, uncertain included")
    uncertain: int = _f("vials whose dispense outcome is unknown")
    samples: int = _f("vials taken as samples")
    unaccounted: int = _f("planned - filled - rejected - samples")


@entry_kind("retained_sample", "Accepted vials kept as retained samples by the recipe's plan (EU GMP Annex 19).")
class RetainedSample(EntryData):
    vials: list[int] = _f("vial positions kept")
    count: int = _f("vials kept")
    planned: int = _f("vials the plan asks for")
    rule: str = _f("how they were chosen: first | last | spread")
    location: str = _f("where they are kept")
    retention: str = _f("how long (the date is set at QA release)")
    short: int = _f("planned - kept (too few accepted vials)")


# ------------------------------------------------------------------------------------------------ alarms, exceptions
@entry_kind("alarm", "An excursion or interlock trip: severity alert | action | fault | interlock.")
class AlarmRaised(EntryData):
    severity: str = _f("alert | action | fault | interlock")
    source: str = _f("what raised it (door, particles_0_5um, hepa_dp, plc_link, ...)")
    message: str = _f("what happened, with the value and limit")
    value: Any = _f("the value seen (unit of the source; a number, text, or a [low, high] range)", None)
    limit: Any = _f("the limit crossed (unit of the source; a number, text, or a [low, high] range)", None)


@entry_kind("alarm_clear", "The condition behind an alarm went back to normal.")
class AlarmClear(EntryData):
    source: str = _f("the alarm's source")


@entry_kind("alarm_ack", "A person acknowledged an alarm.")
class AlarmAck(EntryData):
    alarm_id: int = _f("the alarm's number in the controller's alarm list")
    source: str = _f("the alarm's source")


@entry_kind("warning", "A condition worth attention that does not stop the batch (e.g. lamp hours near the limit).")
class Warning_(EntryData):
    source: str = _f("what it is about")
    message: str = _f("what was seen")


@entry_kind("exception", "An exception to the normal course: a fault, an early end, a monitoring gap.")
class ExceptionEvent(EntryData):
    message: str = _f("what happened")
    phase: Optional[str] = _f("the phase it happened in", None)
    step: Optional[str] = _f("the UV step it happened in", None)
    kind: Optional[str] = _f("a class of exception (monitoring_gap, ...)", None)
    from_: Optional[str] = _f("monitoring_gap: last entry time before the gap (ISO)", None, alias="from")
    seconds: Optional[Number] = _f("monitoring_gap: length of the gap (s)", None)


@entry_kind("deviation", "A deviation opened by an alarm (or an action-level viable result) that touched the batch, "
            "numbered, worked (8D) and closed by QA.")
class DeviationEvent(EntryData):
    event: Literal["opened", "registered", "updated", "closed"] = _f("opened | registered | updated | closed")
    alarm_entry: Optional[int] = _f("opened: seq of the alarm (or viable result) entry", None)
    source: Optional[str] = _f("opened: the alarm's source", None)
    message: Optional[str] = _f("opened: the alarm's message", None)
    phase: Optional[str] = _f("opened: phase at the alarm", None)
    state: Optional[str] = _f("opened: PackML state at the alarm", None)
    number: Optional[str] = _f("registered/updated/closed: the deviation number", None)
    members: Optional[list[int]] = _f("registered: seqs of the opened entries it numbers", None)
    alarm_entries: Optional[list[Optional[int]]] = _f("registered/closed: seqs of the alarm entries", None)
    changes: Optional[dict[str, Any]] = _f("updated: 8D field -> its change (old, new)", None)
    investigator: Optional[str] = _f("updated: the investigator's user id", None)
    name: Optional[str] = _f("updated/closed: printed name of the person", None)
    opened_entry: Optional[int] = _f("closed: seq of the opening entry", None)
    closed_by: Optional[str] = _f("closed: QA user id", None)
    classification: Optional[str] = _f("closed: minor | major | critical", None)
    impact: Optional[str] = _f("closed: impact on the batch", None)
    root_cause: Optional[str] = _f("closed: root cause", None)
    capa: Optional[str] = _f("closed: corrective and preventive action", None)
    comment: Optional[str] = _f("closed: QA's comment", None)


@entry_kind("recovery", "The controller restarted after an unclean shutdown; the gap and the uncertain vial.")
class Recovery(EntryData):
    unclean_shutdown: bool = _f("always true")
    state_before: str = _f("the state the record was in")
    last_seq: int = _f("seq of the last entry before the crash")
    last_time: str = _f("time of that entry (ISO)")
    restart_time: Number = _f("restart time (s, shared clock, Unix epoch)")
    gap_s: Number = _f("time without a controller (s)")
    uncertain_vial: Optional[int] = _f("vial in flight at the crash, if any", None)
    cause: Optional[str] = _f("a controlled stop (e.g. SIGTERM) rather than a crash: its cause", None)


# ------------------------------------------------------------------------------------------------ disposition, QA
@entry_kind("disposition", "The disposition proposal: suitable for cell therapy grade or not, with every reason.")
class DispositionData(EntryData):
    verdict: str = _f("suitable for cell therapy grade | not suitable for cell therapy grade")
    suitable: bool = _f("true when suitable")
    reasons: list[Any] = _f("reasons, each with the entries behind it")
    reconciliation: dict[str, Any] = _f("the reconciliation (see reconciliation)")
    proposal: bool = _f("true: QA releases, not the machine")
    pending: list[str] = _f("what is still to come (viable results, QA release)")


@entry_kind("signature", "An electronic signature (21 CFR 11.50/11.70): who, meaning, and the head hash it signs.")
class Signature(EntryData):
    name: str = _f("printed name")
    user_id: str = _f("user id")
    role: str = _f("the signer's role")
    meaning: str = _f("performed | reviewed | approved | released | ...")
    signed_hash: str = _f("hash of the entry (or header) signed")
    signed_seq: int = _f("seq of the entry signed (0 = header)")
    reason: str = _f("the signer's reason or comment")
    signed_at: Optional[str] = _f("when it was signed (record UTC text)", None)
    key_id: Optional[str] = _f("fingerprint of the site key that proves it", None)
    proof: Optional[str] = _f("keyed MAC over batch, signed hash/seq, user, meaning and time (hex)", None)


@entry_kind("release", "QA's release of the batch, with the disposition it releases and the retention date.")
class Release(EntryData):
    decision: Literal["released"] = _f("released", "released")
    decided_by: Optional[str] = _f("QA user id", None)
    retained_samples: Optional[dict[str, Any]] = _f("retained vials and where they are kept", None)
    verdict: Optional[str] = _f("the disposition's verdict", None)
    suitable: Optional[bool] = _f("the disposition's suitability", None)
    disposition_entry: Optional[int] = _f("seq of the disposition entry", None)
    reasons: list[Any] = _f("the disposition's reasons", [])
    reconciliation: dict[str, Any] = _f("the reconciliation", {})
    released_by: str = _f("QA user id")
    name: str = _f("QA printed name")
    signature_entry: int = _f("seq of the release signature")
    signature_hash: str = _f("hash of the release signature")
    ledger_anchor: Optional[str] = _f("global_seq:hash of the ledger head at release", None)
    comment: str = _f("QA's comment", "")
    expiry: Optional[str] = _f("product expiry (ISO date)", None)
    retention_until: Optional[str] = _f("keep the record until (ISO date)", None)
    retention_rules: Optional[dict[str, str]] = _f("each retention rule's date", None)


# ------------------------------------------------------------------------------------------------ API
def validate_entry(kind: str, data: Mapping[str, Any]) -> EntryData:
    """Check `data` against `kind`'s definition; VocabularyError names the kind, the field and what is allowed."""
    model = VOCABULARY.get(kind)
    if model is None:
        raise VocabularyError(f"unknown entry kind {kind!r}; allowed: {', '.join(sorted(VOCABULARY))} "
                              "(declare a new kind with fillfinish.record.vocabulary.entry_kind)")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(data)"
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
                problems.append(f"{where}: not a field of {kind!r}; allowed: {allowed}")
            else:
                problems.append(f"{where}: {err['msg']}")
        raise VocabularyError(f"{kind!r} entry: " + "; ".join(problems)) from None


def typed(entry: Any) -> EntryData:
    """An Entry's data as its kind's model (VocabularyError for a kind or field the vocabulary does not know)."""
    return validate_entry(entry.kind, entry.data)


def _type_name(annotation: Any) -> str:
    """A short readable type for the data dictionary."""
    text = str(annotation).replace("typing.", "")
    for long, short in (("Union[int, float]", "number"), ("Union[bool, int, float, str, NoneType]", "scalar"),
                        ("NoneType", "null"), ("Optional[", "optional["), ("Literal", "one of")):
        text = text.replace(long, short)
    return text.replace("<class '", "").replace("'>", "")


def data_dictionary() -> str:
    """docs/record-vocabulary.md: every entry kind, its meaning and its fields (generated; do not edit by hand)."""
    lines = ["# Record vocabulary (data dictionary)", "",
             "Generated from `fillfinish/record/vocabulary.py` by `python -m fillfinish.record.vocabulary`; a test keeps",
             "it equal to the code. Every entry of the record is one of these kinds; a write with an unknown kind or",
             "field is refused. Units are in the field descriptions.", ""]
    for kind in sorted(VOCABULARY):
        model = VOCABULARY[kind]
        lines += [f"## `{kind}`", "", model.MEANING, "", "| field | type | required | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            required = "yes" if field.is_required() else "no"
            desc = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{field.alias or name}` | {_type_name(field.annotation).replace('|', '/')} | "
                         f"{required} | {desc} |")
        lines.append("")
    return "\n".join(lines)


from fillfinish.record import vocabulary_registries as _registry_kinds  # noqa: E402,F401 - declares the registry kinds

if __name__ == "__main__":  # run as a script: use the package module, where every kind (registries too) is declared
    from fillfinish.record.vocabulary import data_dictionary as _dictionary

    sys.stdout.write(_dictionary())
