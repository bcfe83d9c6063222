"""The record kinds of the machine and its hardware actions: PackML states, commands, phases, start,
master data, line checks, monitoring, intents, outcomes, the safe state, shutdown and refused access.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from fillfinish.record.vocabulary_base import EntryData, Number, _f, entry_kind


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
