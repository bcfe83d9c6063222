"""Review by exception (EU GMP Chapter 4, 4.20 note): a batch's compliance summary plus every exception in its record.

A continuously controlled batch may be reviewed through a compliance summary (did each controlled step meet its
limits?) and the list of exceptions (alarms, deviations, out-of-tolerance values, interventions, holds, faults,
recovery). Both are derived here from the record alone (header + entries + the verify result), so every export (PDF,
JSON, BatchML) shows the same review and anyone can recompute it. The parts live in review_model (data, formatting),
review_exceptions (exceptions, signatures), review_checks (compliance checks) and review_quality (viable, media fill,
retained samples, QA decision); this module assembles them and keeps the names other modules import. Entries are
read typed (fillfinish.record.typed_entries).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from fillfinish.record.export.review_quality import quality_views
from fillfinish.record.models import Entry
from fillfinish.record.typed_entries import TypedEntry, of_type, read_typed
from fillfinish.record.vocabulary import DispositionData, EntryData, LineCheck, TipStep


def _line_and_tip_checks(rows: list[TypedEntry[EntryData]]) -> list[Check]:
    """Line clearance checks before the UV cycle and the tip sterilisation step."""
    checks: list[Check] = []
    line = of_type(rows, LineCheck)
    if line:
        failed = [e for e in line if not e.data.ok]
        names = ", ".join(e.data.check for e in failed)
        checks.append(Check("Line clearance checks", "fail" if failed else "pass",
                            f"{len(line) - len(failed)}/{len(line)} passed" + (f"; failed: {names}" if failed else ""),
                            tuple(e.seq for e in failed)))
    tips = of_type(rows, TipStep)
    if tips:
        tip = tips[-1].data
        checks.append(Check("Tip sterilisation", "pass" if tip.lot else "fail",
                            f"{tip.method}: lot {tip.lot or '-'}, expiry {tip.expiry or '-'}, "
                            f"cycle {tip.sterilisation_cycle_id or '-'}", (tips[-1].seq,)))
    return checks


def _process_checks(snap: RecordSnapshot, entries: list[Entry], rows: list[TypedEntry[EntryData]]) -> list[Check]:
    """Line, UV, tips, hold times, environment and check-weighing, in the order of the process."""
    recipe = snap.recipe
    min_irr = recipe_number(recipe, "uv", "min_irradiance_mw_cm2")
    found = _line_and_tip_checks(rows)
    line, tip = [c for c in found if c.name.startswith("Line")], [c for c in found if c.name.startswith("Tip ster")]
    maybe = (*line, _uv_check("UV decontamination cycle", "uv_cycle", entries, min_irr),
             _uv_check("Tip station UV", "tip_uv", entries, None), *tip, _hold_time_check(entries, recipe),
             _environment_check(entries, recipe), _weight_check(entries))
    return [c for c in maybe if c is not None]


def _reconciliation_check(rec: dict[str, Any], rec_seq: int | None) -> Check:
    """planned = filled + rejected + samples, unaccounted 0."""
    return Check("Vial reconciliation", "pass" if _num(rec.get("unaccounted")) == 0 else "fail",
                 f"planned {rec.get('planned')} = filled {rec.get('filled')} + rejected {rec.get('rejected')} "
                 f"+ samples {rec.get('samples')}; unaccounted {rec.get('unaccounted')}"
                 + (" (computed: no reconciliation entry)" if rec_seq is None else ""),
                 (rec_seq,) if rec_seq else ())


def _deviation_and_event_checks(devs: list[dict[str, Any]], items: list[ExceptionItem]) -> list[Check]:
    """Deviations (open ones block release), faults and interventions from the exceptions list."""
    still_open = [dev for dev in devs if dev["open"]]
    faults = [i for i in items if i.kind in ("exception", "safe_state", "interlock", "recovery")]
    interventions = [i for i in items if i.kind in ("intervention", "hold", "command_refused")]
    return [
        Check("Deviations", "pass" if not devs else ("fail" if still_open else "attention"),
              f"{len(devs)} deviations, {len(devs) - len(still_open)} closed"
              + ("; open: " + ", ".join(f"{dev['number'] or '(unnumbered)'} {dev['state']}" for dev in still_open)
                 + "; open deviations block release" if still_open else ""),
              tuple(s for dev in devs for s in dev["opened_entries"])),
        Check("Faults, safe-state actions, recovery", "pass" if not faults else "fail", f"{len(faults)} recorded",
              tuple(i.seq for i in faults)),
        Check("Interventions and holds", "pass" if not interventions else "attention",
              f"{len(interventions)} recorded", tuple(i.seq for i in interventions)),
    ]


def _disposition(rows: list[TypedEntry[EntryData]], viable_reasons: list[dict[str, Any]]
                 ) -> tuple[TypedEntry[DispositionData] | None, str | None, bool | None, tuple[dict[str, Any], ...]]:
    """The last disposition proposal with the viable results folded in (growth after the proposal: not CTG)."""
    found = of_type(rows, DispositionData)
    if not found:
        return None, None, None, ()
    disp = found[-1]
    verdict, suitable = disp.data.verdict, disp.data.suitable
    reasons = tuple(r for r in disp.data.reasons if isinstance(r, Mapping))
    if viable_reasons:
        from fillfinish.batch.disposition import NOT_SUITABLE

        verdict, suitable = NOT_SUITABLE, False
        reasons = reasons + tuple(viable_reasons)
    return disp, verdict, suitable, reasons


def review(snap: RecordSnapshot) -> ReviewSummary:
    """The review-by-exception summary of a record snapshot."""
    entries = list(snap.entries)
    rows = read_typed(entries)
    integrity, integrity_ok, integrity_text = _integrity_check(snap)
    checks: list[Check] = [integrity, *_process_checks(snap, entries, rows)]
    rec, rec_seq = _reconciliation(entries, snap.header.planned_vials)
    checks.append(_reconciliation_check(rec, rec_seq))
    items = exceptions(entries)
    quality = quality_views(snap, rows)
    checks.extend(_deviation_and_event_checks(quality["deviations"], items))
    checks.extend(quality["checks"])
    state = final_state(entries)
    checks.append(Check("Final state", "pass" if state == "Complete" else "fail", state))
    disp, verdict, suitable, reasons = _disposition(rows, quality["viable_reasons"])
    if disp is None:
        checks.append(Check("Disposition", "n/a", "no disposition recorded (the batch has not ended)"))
    else:
        checks.append(Check("Disposition", "pass" if suitable else "fail", verdict or "?", (disp.seq,)))
    return ReviewSummary(
        batch_id=snap.header.batch_id, final_state=state, verdict=verdict, suitable=suitable,
        disposition_seq=disp.seq if disp is not None else None, disposition_reasons=tuple(dict(r) for r in reasons),
        reconciliation=rec, vial_counts=vial_counts(entries), checks=tuple(checks), exceptions=tuple(items),
        signatures=tuple(signatures(entries, _invalid_signatures(snap))), entries_total=len(entries),
        integrity_ok=integrity_ok, integrity_text=integrity_text, viable=tuple(quality["viable"]),
        deviations=tuple(quality["deviations"]), media_fill=quality["media_fill"],
        retained_samples=quality["retained"], qa_decision=quality["decision"],
    )
