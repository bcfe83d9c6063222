"""The record kinds of measurements and vials: particle, UV and tare readings, UV exposures, the tip
step, each vial's judgement, the reconciliation and the retained samples.
"""

from __future__ import annotations

from typing import Literal, Optional

from fillfinish.record.vocabulary_base import EntryData, Number, _f, entry_kind


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
