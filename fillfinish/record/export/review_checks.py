"""The review's compliance checks: record integrity, UV cycles, hold times (Annex 1 8.18), environment, check-weighing,
reconciliation, vial counts and the final state, each with its evidence entries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fillfinish.record.export.review_model import Check, RecordSnapshot, _num, fmt_duration, recipe_number
from fillfinish.record.models import Entry
from fillfinish.record.export.review_exceptions import _vial_item
from fillfinish.record.typed_entries import of_type, read_typed
from fillfinish.record.vocabulary import (
    AlarmRaised,
    Measurement,
    PhaseEvent,
    Reconciliation,
    StateChange,
    UvCycle,
    UvStart,
    VialJudgement,
)


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
    rows = read_typed(entries)
    starts = [t for t in of_type(rows, UvStart) if t.data.step == step]
    done = [t for t in of_type(rows, UvCycle) if t.data.step == step]
    if not starts and not done:
        return None
    if not done:
        return Check(name, "fail", "started but no completed cycle recorded", tuple(e.seq for e in starts))
    last = done[-1].data
    dose, target = float(last.dose_mj_cm2), float(last.target_dose_mj_cm2)
    lowest = float(last.min_irradiance_mw_cm2)
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
    """(phase, event) -> Unix seconds of the last such phase entry: its record timestamp (phase entries carry
    no time field: the record's timestamp is the shared clock's time)."""
    out: dict[tuple[str, str], float] = {}
    for row in of_type(read_typed(entries), PhaseEvent):
        out[(row.data.phase, row.data.event)] = row.ts.timestamp()
    return out


def _step_end(entries: Sequence[Entry], step: str, phase: str) -> float | None:
    """End of a UV step in Unix seconds: the `end` of its last `uv_cycle` entry, else the end of its phase."""
    for row in reversed(of_type(read_typed(entries), UvCycle)):
        if row.data.step == step:
            return float(row.data.end)
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
    rows = read_typed(entries)
    samples = [m.data for m in of_type(rows, Measurement) if m.data.signal == "particles"]
    env_alarms = of_type(rows, AlarmRaised)
    if not samples and not env_alarms:
        return None
    parts = [f"{len(samples)} particle samples"]
    status = "pass"
    for size, counts in (("0.5", [m.per_m3_0_5um for m in samples]), ("5", [m.per_m3_5um for m in samples])):
        values = [float(v) for v in counts if v is not None]
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
        low = sum(1 for m in samples if (m.flow_l_min or min_flow) < min_flow)
        if low:
            parts.append(f"{low} samples below the minimum flow {min_flow} L/min")
            status = "fail"
    severities = Counter(a.data.severity for a in env_alarms)
    if env_alarms:
        parts.append("alarms: " + ", ".join(f"{n} {sev}" for sev, n in sorted(severities.items())))
        if any(sev != "alert" for sev in severities):
            status = "fail"
        elif status == "pass":
            status = "attention"
    return Check("Environmental monitoring", status, "; ".join(parts), tuple(e.seq for e in env_alarms))


def _weight_check(entries: Sequence[Entry]) -> Check | None:
    """Check-weighing: how many vials were weighed, how many in tolerance, rejected and uncertain vials."""
    vials = of_type(read_typed(entries), VialJudgement)
    if not vials:
        return None
    weighed = [v for v in vials if v.data.weighed or v.data.net_g is not None]
    bad = [v for v in vials if _vial_item(v) is not None]
    status = "pass" if not bad else "attention"
    detail = f"{len(vials)} vials judged, {len(weighed)} weighed, {len(bad)} rejected/uncertain/out of tolerance"
    return Check("Check-weighing (fill volume)", status, detail, tuple(e.seq for e in bad))


def _reconciliation(entries: Sequence[Entry], planned: int) -> tuple[dict[str, Any], int | None]:
    """The last recorded reconciliation (and its seq), else one computed from the vial entries."""
    recorded = of_type(read_typed(entries), Reconciliation)
    if recorded:
        return recorded[-1].data.model_dump(), recorded[-1].seq
    counts = vial_counts(entries)
    rejected = counts["rejected"] + counts["uncertain"]
    return {"planned": planned, "filled": counts["accepted"], "rejected": rejected, "uncertain": counts["uncertain"],
            "samples": 0, "unaccounted": planned - counts["accepted"] - rejected, "computed": True}, None


def vial_counts(entries: Iterable[Entry]) -> dict[str, int]:
    """accepted / rejected / uncertain vials (the last judgement of each vial counts, as in batch/history.py)."""
    last: dict[int, str] = {}
    for row in of_type(read_typed(entries), VialJudgement):
        last[row.data.vial] = row.data.status
    out = {"accepted": 0, "rejected": 0, "uncertain": 0}
    for status in last.values():
        out[status if status in out else "rejected"] += 1
    return out


def final_state(entries: Iterable[Entry]) -> str:
    """The PackML state the record last reached (Stopped when it has no state entry)."""
    state = "Stopped"
    for row in of_type(read_typed(entries), StateChange):
        state = row.data.to
    return state
