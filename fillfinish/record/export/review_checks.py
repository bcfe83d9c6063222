"""The review's compliance checks: record integrity, UV cycles, hold times (Annex 1 8.18), environment, check-weighing,
reconciliation, vial counts and the final state, each with its evidence entries."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fillfinish.record.models import Entry
from fillfinish.record.export.review_model import (
    EXCEPTION_KINDS,
    HOLD_STATES,
    ROUTINE_COMMANDS,
    Check,
    ExceptionItem,
    RecordSnapshot,
    Signature,
    _g_as_mg,
    _num,
    _text,
    fmt_duration,
    fmt_time,
    is_person,
    recipe_number,
)
from fillfinish.record.export.review_exceptions import _vial_item


# ---------------------------------------------------------------------------------------------------- checks
def _integrity_check(snap: RecordSnapshot) -> tuple[Check, bool | None, str]:
    """The hash-chain verification as a check, its ok flag and its one-line text."""
    result = snap.integrity
    if result is None:
        return Check("Record integrity (hash chain)", "n/a", "not verified"), None, "not verified"
    if result.ok:
        text = f"intact ({result.entries_checked} entries verified)"
        if snap.ledger is not None and not snap.ledger.ok and snap.ledger.problem is not None:
            text += f"; ledger NOT INTACT: {snap.ledger.problem.describe('row')}"
            return Check("Record integrity (hash chain)", "fail", text), False, text
        return Check("Record integrity (hash chain)", "pass", text), True, text
    assert result.problem is not None
    text = f"NOT INTACT: {result.problem.describe()}"
    return Check("Record integrity (hash chain)", "fail", text, (result.problem.seq,)), False, text


def _uv_check(name: str, step: str, entries: Sequence[Entry], min_irr: float | None) -> Check | None:
    """A UV step (reference-point cycle or tip station) against its target dose and minimum irradiance."""
    starts = [e for e in entries if e.kind == "uv_start" and e.data.get("step") == step]
    done = [e for e in entries if e.kind == "uv_cycle" and e.data.get("step") == step]
    if not starts and not done:
        return None
    if not done:
        return Check(name, "fail", "started but no completed cycle recorded", tuple(e.seq for e in starts))
    last = done[-1]
    dose, target = _num(last.data.get("dose_mj_cm2")), _num(last.data.get("target_dose_mj_cm2"))
    lowest = _num(last.data.get("min_irradiance_mw_cm2"))
    parts = []
    status = "pass"
    if dose is not None:
        parts.append(f"dose {dose:.1f} mJ/cm2" + (f" (target {target:.0f})" if target is not None else ""))
        if target is not None and dose < target:
            status = "fail"
    if lowest is not None and min_irr is not None and step == "uv_cycle":
        parts.append(f"min irradiance {lowest:.3g} mW/cm2 (validated min {min_irr:.3g})")
        if lowest < min_irr:
            status = "fail"
    if len(done) > 1:
        parts.append(f"{len(done)} cycles recorded")
        status = "attention" if status == "pass" else status
    return Check(name, status, "; ".join(parts) or "completed", tuple(e.seq for e in done))


def _phase_times(entries: Sequence[Entry]) -> dict[tuple[str, str], float]:
    """(phase, event) -> Unix seconds of the last such phase entry: its record timestamp (the controller writes no
    time field in phase entries; an explicit numeric `t` in older hand-written records is still honoured)."""
    out: dict[tuple[str, str], float] = {}
    for entry in entries:
        if entry.kind == "phase":
            t = _num(entry.data.get("t"))
            out[(str(entry.data.get("phase")), str(entry.data.get("event")))] = t if t is not None else entry.ts.timestamp()
    return out


def _step_end(entries: Sequence[Entry], step: str, phase: str) -> float | None:
    """End of a UV step in Unix seconds: its `end` field when numeric, else the time of its `uv_cycle` entry, else the
    end of its phase."""
    for e in reversed(entries):
        if e.kind == "uv_cycle" and e.data.get("step") == step:
            end = _num(e.data.get("end"))
            return end if end is not None else e.ts.timestamp()
    return _phase_times(entries).get((phase, "done"))


def _hold_time_check(entries: Sequence[Entry], recipe: Mapping[str, Any]) -> Check | None:
    """Annex 1 8.18 hold times: UV end to fill start, tips to use, fill duration, against the recipe limits."""
    phases = _phase_times(entries)
    fill_start = phases.get(("fill", "start"))
    if fill_start is None:
        return None
    uv_end = _step_end(entries, "uv_cycle", "uv_cycle")
    tip_end = _step_end(entries, "tip_uv", "tip_sterilisation")
    fill_done = phases.get(("fill", "done"))
    rows = (
        ("UV end to fill start", uv_end, fill_start, "uv_end_to_fill_start_s"),
        ("tips to first use", tip_end, fill_start, "tips_sterilised_to_use_s"),
        ("fill duration", fill_start, fill_done, "fill_duration_max_s"),
    )
    parts, status = [], "pass"
    for label, begin, end, key in rows:
        if begin is None or end is None:
            continue
        took = end - begin
        limit = recipe_number(recipe, "hold_times", key)
        parts.append(f"{label} {fmt_duration(took)}" + (f" (max {fmt_duration(limit)})" if limit is not None else ""))
        if limit is not None and took > limit:
            status = "fail"
    if not parts:
        return None
    return Check("Hold times (Annex 1 8.18)", status, "; ".join(parts))


def _environment_check(entries: Sequence[Entry], recipe: Mapping[str, Any]) -> Check | None:
    """Particle samples against the recipe's alert and action limits, and the environmental alarms."""
    samples = [e for e in entries if e.kind == "measurement" and e.data.get("signal") == "particles"]
    env_alarms = [e for e in entries if e.kind == "alarm"]
    if not samples and not env_alarms:
        return None
    parts = [f"{len(samples)} particle samples"]
    status = "pass"
    for size, key in (("0.5", "per_m3_0_5um"), ("5", "per_m3_5um")):
        values = [v for v in (_num(e.data.get(key)) for e in samples) if v is not None]
        if not values:
            continue
        name = "0_5um" if size == "0.5" else "5um"
        alert = recipe_number(recipe, "environment", f"particles_{name}_alert_per_m3")
        action = recipe_number(recipe, "environment", f"particles_{name}_action_per_m3")
        over_alert = sum(1 for v in values if alert is not None and v >= alert)
        over_action = sum(1 for v in values if action is not None and v >= action)
        text = f">={size} um max {max(values):,.0f}/m3"
        if alert is not None and action is not None:
            text += f" (alert {alert:,.0f}, action {action:,.0f}; {over_alert} at/above alert, {over_action} action)"
        parts.append(text)
        if over_action:
            status = "fail"
        elif over_alert and status == "pass":
            status = "attention"
    min_flow = recipe_number(recipe, "environment", "min_sample_flow_l_min")
    if min_flow is not None:
        low = sum(1 for e in samples if (_num(e.data.get("flow_l_min")) or min_flow) < min_flow)
        if low:
            parts.append(f"{low} samples below the minimum flow {min_flow} L/min")
            status = "fail"
    severities = Counter(str(e.data.get("severity")) for e in env_alarms)
    if env_alarms:
        parts.append("alarms: " + ", ".join(f"{n} {sev}" for sev, n in sorted(severities.items())))
        if any(sev != "alert" for sev in severities):
            status = "fail"
        elif status == "pass":
            status = "attention"
    return Check("Environmental monitoring", status, "; ".join(parts), tuple(e.seq for e in env_alarms))


def _weight_check(entries: Sequence[Entry]) -> Check | None:
    """Check-weighing: how many vials were weighed, how many in tolerance, rejected and uncertain vials."""
    vials = [e for e in entries if e.kind == "vial"]
    if not vials:
        return None
    weighed = [e for e in vials if e.data.get("weighed") or _num(e.data.get("net_g")) is not None]
    bad = [e for e in vials if _vial_item(e) is not None]
    status = "pass" if not bad else "attention"
    detail = f"{len(vials)} vials judged, {len(weighed)} weighed, {len(bad)} rejected/uncertain/out of tolerance"
    return Check("Check-weighing (fill volume)", status, detail, tuple(e.seq for e in bad))


def _reconciliation(entries: Sequence[Entry], planned: int) -> tuple[dict[str, Any], int | None]:
    """The last recorded reconciliation (and its seq), else one computed from the vial entries."""
    recorded = [e for e in entries if e.kind == "reconciliation"]
    if recorded:
        return dict(recorded[-1].data), recorded[-1].seq
    counts = vial_counts(entries)
    rejected = counts["rejected"] + counts["uncertain"]
    return {"planned": planned, "filled": counts["accepted"], "rejected": rejected, "uncertain": counts["uncertain"],
            "samples": 0, "unaccounted": planned - counts["accepted"] - rejected, "computed": True}, None


def vial_counts(entries: Iterable[Entry]) -> dict[str, int]:
    """accepted / rejected / uncertain vials (the last judgement of each vial counts, as in batch/history.py)."""
    last: dict[Any, str] = {}
    for entry in entries:
        if entry.kind == "vial":
            last[entry.data.get("vial")] = str(entry.data.get("status"))
    out = {"accepted": 0, "rejected": 0, "uncertain": 0}
    for status in last.values():
        out[status if status in out else "rejected"] += 1
    return out


def final_state(entries: Iterable[Entry]) -> str:
    """The PackML state the record last reached (Stopped when it has no state entry)."""
    state = "Stopped"
    for entry in entries:
        if entry.kind == "state" and isinstance(entry.data.get("to"), str):
            state = entry.data["to"]
    return state
