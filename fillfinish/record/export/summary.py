"""Review by exception (EU GMP Chapter 4, 4.20 note): a batch's compliance summary plus every exception in its record.

A continuously controlled batch may be reviewed through a compliance summary (did each controlled step meet its
limits?) and the list of exceptions (alarms, deviations, out-of-tolerance values, interventions, holds, faults,
recovery). Both are derived here from the record alone (header + entries + the verify result), so every export (PDF,
JSON, BatchML) shows the same review and anyone can recompute it. The parts live in review_model (data, formatting),
review_exceptions (exceptions, signatures) and review_checks (compliance checks); this module assembles them and keeps
the names other modules import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fillfinish.record.chain import format_ts
from fillfinish.record.export.review_checks import (  # noqa: F401 - re-exported
    _environment_check,
    _hold_time_check,
    _integrity_check,
    _phase_times,
    _reconciliation,
    _step_end,
    _uv_check,
    _weight_check,
    final_state,
    vial_counts,
)
from fillfinish.record.export.review_exceptions import (  # noqa: F401 - re-exported
    _hold_items,
    _vial_item,
    entries_by_seq,
    exceptions,
    signatures,
)
from fillfinish.record.export.review_model import (  # noqa: F401 - re-exported
    CHECK_STATUSES,
    EXCEPTION_KINDS,
    HOLD_STATES,
    ROUTINE_COMMANDS,
    SYSTEM_ACTORS,
    Check,
    ExceptionItem,
    RecordSnapshot,
    ReviewSummary,
    Signature,
    _invalid_signatures,
    _num,
    _text,
    fmt_duration,
    fmt_time,
    is_person,
    load_snapshot,
    parse_recipe,
    recipe_number,
)
from fillfinish.record.models import Entry


def review(snap: RecordSnapshot) -> ReviewSummary:
    """The review-by-exception summary of a record snapshot."""
    entries = list(snap.entries)
    recipe = snap.recipe
    integrity, integrity_ok, integrity_text = _integrity_check(snap)
    checks: list[Check] = [integrity]

    line = [e for e in entries if e.kind == "line_check"]
    if line:
        failed = [e for e in line if e.data.get("ok") is not True]
        names = ", ".join(str(e.data.get("check")) for e in failed)
        checks.append(Check("Line clearance checks", "fail" if failed else "pass",
                            f"{len(line) - len(failed)}/{len(line)} passed" + (f"; failed: {names}" if failed else ""),
                            tuple(e.seq for e in failed)))
    min_irr = recipe_number(recipe, "uv", "min_irradiance_mw_cm2")
    for check in (_uv_check("UV decontamination cycle", "uv_cycle", entries, min_irr),
                  _uv_check("Tip station UV", "tip_uv", entries, None)):
        if check is not None:
            checks.append(check)
    tips = [e for e in entries if e.kind == "tip_step"]
    if tips:
        d = tips[-1].data
        checks.append(Check("Tip sterilisation", "pass" if d.get("lot") else "fail",
                            f"{d.get('method', '?')}: lot {d.get('lot', '-')}, expiry {d.get('expiry', '-')}, "
                            f"cycle {d.get('sterilisation_cycle_id', '-')}", (tips[-1].seq,)))
    for maybe in (_hold_time_check(entries, recipe), _environment_check(entries, recipe), _weight_check(entries)):
        if maybe is not None:
            checks.append(maybe)

    rec, rec_seq = _reconciliation(entries, snap.header.planned_vials)
    unaccounted = _num(rec.get("unaccounted"))
    checks.append(Check("Vial reconciliation", "pass" if unaccounted == 0 else "fail",
                        f"planned {rec.get('planned')} = filled {rec.get('filled')} + rejected {rec.get('rejected')} "
                        f"+ samples {rec.get('samples')}; unaccounted {rec.get('unaccounted')}"
                        + (" (computed: no reconciliation entry)" if rec_seq is None else ""),
                        (rec_seq,) if rec_seq else ()))

    items = exceptions(entries)
    quality = _quality_views(snap, entries)
    devs = quality["deviations"]
    still_open = [d for d in devs if d["open"]]
    checks.append(Check("Deviations", "pass" if not devs else ("fail" if still_open else "attention"),
                        f"{len(devs)} deviations, {len(devs) - len(still_open)} closed"
                        + ("; open: " + ", ".join(f"{d['number'] or '(unnumbered)'} {d['state']}" for d in still_open)
                           + "; open deviations block release" if still_open else ""),
                        tuple(s for d in devs for s in d["opened_entries"])))
    checks.extend(quality["checks"])
    faults = [i for i in items if i.kind in ("exception", "safe_state", "interlock", "recovery")]
    checks.append(Check("Faults, safe-state actions, recovery", "pass" if not faults else "fail",
                        f"{len(faults)} recorded", tuple(i.seq for i in faults)))
    interventions = [i for i in items if i.kind in ("intervention", "hold", "command_refused")]
    checks.append(Check("Interventions and holds", "pass" if not interventions else "attention",
                        f"{len(interventions)} recorded", tuple(i.seq for i in interventions)))

    state = final_state(entries)
    checks.append(Check("Final state", "pass" if state == "Complete" else "fail", state))
    disp = next((e for e in reversed(entries) if e.kind == "disposition"), None)
    verdict = str(disp.data.get("verdict")) if disp is not None and disp.data.get("verdict") is not None else None
    suitable = disp.data.get("suitable") if disp is not None and isinstance(disp.data.get("suitable"), bool) else None
    reasons = tuple(r for r in (disp.data.get("reasons") or []) if isinstance(r, Mapping)) if disp is not None else ()
    if disp is not None and quality["viable_reasons"]:  # results read after the proposal: growth makes it not CTG
        from fillfinish.batch.disposition import NOT_SUITABLE

        verdict, suitable = NOT_SUITABLE, False
        reasons = reasons + tuple(quality["viable_reasons"])
    if disp is None:
        checks.append(Check("Disposition", "n/a", "no disposition recorded (the batch has not ended)"))
    else:
        checks.append(Check("Disposition", "pass" if suitable else "fail", verdict or "?", (disp.seq,)))

    return ReviewSummary(
        batch_id=snap.header.batch_id,
        final_state=state,
        verdict=verdict,
        suitable=suitable,
        disposition_seq=disp.seq if disp is not None else None,
        disposition_reasons=tuple(dict(r) for r in reasons),
        reconciliation=rec,
        vial_counts=vial_counts(entries),
        checks=tuple(checks),
        exceptions=tuple(items),
        signatures=tuple(signatures(entries, _invalid_signatures(snap))),
        entries_total=len(entries),
        integrity_ok=integrity_ok,
        integrity_text=integrity_text,
        viable=tuple(quality["viable"]),
        deviations=tuple(devs),
        media_fill=quality["media_fill"],
        retained_samples=quality["retained"],
        qa_decision=quality["decision"],
    )


def _quality_views(snap: RecordSnapshot, entries: list[Entry]) -> dict[str, Any]:
    """Viable results with limits, deviations with 8D state, media-fill outcome, retained samples, QA decision, and
    the checks they make (fillfinish.quality)."""
    from fillfinish.quality import deviations as quality_deviations
    from fillfinish.quality import viable as quality_viable

    checks: list[Check] = []
    status = quality_viable.status(snap.header, entries)
    rows = []
    for s in status.samples:
        d = s.result.data if s.result else {}
        rows.append({"sample_id": s.planned.sample_id, "type": s.planned.sample_type, "location": s.planned.location,
                     "grade": s.planned.grade, "limits": s.limits.text(), "cfu": d.get("cfu"), "level": s.level,
                     "reader": d.get("reader"), "medium_lot": d.get("medium_lot"),
                     "incubation": f"{d.get('incubation_start')} .. {d.get('incubation_end')}" if d else None,
                     "verified_by": s.verified.data.get("verified_by") if s.verified else None,
                     "entry": s.result.seq if s.result else None})
    if status.samples:
        bad = status.unsuitable_reasons()
        alerts = [s for s in status.samples if s.level == "alert"]
        state = "fail" if bad else ("n/a" if status.missing or status.unverified else
                                    ("attention" if alerts else "pass"))
        detail = (f"{len(status.samples) - len(status.missing)}/{len(status.samples)} results entered, "
                  f"{len(status.samples) - len(status.missing) - len(status.unverified)} verified")
        if bad:
            detail += "; " + "; ".join(r["reason"] for r in bad)
        elif alerts:
            detail += f"; {len(alerts)} at alert level"
        if status.missing or status.unverified:
            detail += "; release waits for every planned result, verified"
        checks.append(Check("Viable monitoring (Annex 1 9.24-9.31)", state, detail,
                            tuple(s.result.seq for s in status.samples if s.result is not None)))
    media = next((e for e in entries if e.kind == "mediafill_result"), None)
    media_view = None
    if media is not None:
        media_view = dict(media.data, entry=media.seq)
        checks.append(Check("Media fill outcome (APS)", "pass" if media.data.get("passed") else "fail",
                            f"incubated {media.data.get('incubated')}, growth {media.data.get('growth')}, not "
                            f"incubated {media.data.get('not_incubated')} of {media.data.get('units_filled')} filled; "
                            f"{'passed' if media.data.get('passed') else 'FAILED'}", (media.seq,)))
    elif snap.header.mode == "media_fill":
        checks.append(Check("Media fill outcome (APS)", "n/a", "not recorded yet (after incubation: "
                                                               "`fillfinish mediafill result`)"))
    kept = [e for e in entries if e.kind == "retained_sample"]
    decision = next((e for e in entries if e.kind in ("release", "rejection")), None)
    retained_view = None
    if kept:
        d = kept[-1].data
        retention = decision.data.get("retention_until") if decision is not None else None
        retained_view = {"vials": d.get("vials", []), "count": d.get("count"), "location": d.get("location"),
                         "retention_until": retention, "entry": kept[-1].seq}
        checks.append(Check("Retained samples", "pass" if not d.get("short") else "attention",
                            f"{d.get('count')} vials {d.get('vials')} kept at {d.get('location')}; retention "
                            f"{retention or 'date set at QA release'}", (kept[-1].seq,)))
    decision_view = None
    if decision is not None:
        dd = decision.data
        decision_view = {"decision": dd.get("decision", "released" if decision.kind == "release" else "rejected"),
                         "by": decision.actor, "name": dd.get("name"), "ts": format_ts(decision.ts),
                         "verdict": dd.get("verdict"), "expiry": dd.get("expiry"),
                         "retention_until": dd.get("retention_until"), "reason": dd.get("reason"),
                         "entry": decision.seq}
    return {"checks": checks, "viable": rows, "viable_reasons": status.unsuitable_reasons(),
            "deviations": [d.as_dict() for d in quality_deviations.fold(snap.header, entries)],
            "media_fill": media_view, "retained": retained_view, "decision": decision_view}
