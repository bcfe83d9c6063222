"""The review's quality part: viable monitoring results against their limits, deviations with their 8D state, the
media-fill outcome, retained samples and the QA decision, and the checks they make (fillfinish.quality).

Reads the record typed (fillfinish.record.typed_entries)."""

from __future__ import annotations

from typing import Any

from fillfinish.record.chain import format_ts
from fillfinish.record.export.review_model import Check, RecordSnapshot
from fillfinish.record.typed_entries import TypedEntry, of_type
from fillfinish.record.vocabulary import EntryData, Release, RetainedSample, typed
from fillfinish.record.vocabulary_registries import MediaFillResult, Rejection, ViableResult, ViableVerified

Rows = list[TypedEntry[EntryData]]


def _viable(snap: RecordSnapshot, rows: Rows) -> tuple[list[dict[str, Any]], list[Check], list[dict[str, Any]]]:
    """Viable results (one row per planned sample), their check, and the reasons that make the batch not CTG."""
    from fillfinish.quality import viable as quality_viable

    status = quality_viable.status(snap.header, [r.entry for r in rows])
    table = []
    for s in status.samples:
        res = typed(s.result) if s.result else None
        ver = typed(s.verified) if s.verified else None
        res = res if isinstance(res, ViableResult) else None
        table.append({"sample_id": s.planned.sample_id, "type": s.planned.sample_type, "location": s.planned.location,
                      "grade": s.planned.grade, "limits": s.limits.text(), "cfu": res.cfu if res else None,
                      "level": s.level, "reader": res.reader if res else None,
                      "medium_lot": res.medium_lot if res else None,
                      "incubation": f"{res.incubation_start} .. {res.incubation_end}" if res else None,
                      "verified_by": ver.verified_by if isinstance(ver, ViableVerified) else None,
                      "entry": s.result.seq if s.result else None})
    if not status.samples:
        return table, [], status.unsuitable_reasons()
    bad = status.unsuitable_reasons()
    alerts = [s for s in status.samples if s.level == "alert"]
    state = "fail" if bad else ("n/a" if status.missing or status.unverified else ("attention" if alerts else "pass"))
    detail = (f"{len(status.samples) - len(status.missing)}/{len(status.samples)} results entered, "
              f"{len(status.samples) - len(status.missing) - len(status.unverified)} verified")
    if bad:
        detail += "; " + "; ".join(r["reason"] for r in bad)
    elif alerts:
        detail += f"; {len(alerts)} at alert level"
    if status.missing or status.unverified:
        detail += "; release waits for every planned result, verified"
    check = Check("Viable monitoring (Annex 1 9.24-9.31)", state, detail,
                  tuple(s.result.seq for s in status.samples if s.result is not None))
    return table, [check], bad


def _media_fill(snap: RecordSnapshot, rows: Rows) -> tuple[dict[str, Any] | None, list[Check]]:
    """The media-fill outcome (APS) and its check; n/a for a media-fill batch not read yet."""
    found = of_type(rows, MediaFillResult)
    if found:
        media = found[0]
        m = media.data
        view = dict(m.model_dump(exclude_none=True), entry=media.seq)
        return view, [Check("Media fill outcome (APS)", "pass" if m.passed else "fail",
                            f"incubated {m.incubated}, growth {m.growth}, not incubated {m.not_incubated} of "
                            f"{m.units_filled} filled; {'passed' if m.passed else 'FAILED'}", (media.seq,))]
    if snap.header.mode == "media_fill":
        return None, [Check("Media fill outcome (APS)", "n/a", "not recorded yet (after incubation: "
                                                               "`fillfinish mediafill result`)")]
    return None, []


def _decision(rows: Rows) -> TypedEntry[Release | Rejection] | None:
    """The QA release or rejection entry, if any."""
    found = [TypedEntry(r.entry, r.data) for r in rows if isinstance(r.data, (Release, Rejection))]
    return found[0] if found else None


def _retained(rows: Rows, decision: TypedEntry[Release | Rejection] | None
              ) -> tuple[dict[str, Any] | None, list[Check]]:
    """The retained samples kept and their retention date (set at QA release)."""
    kept = of_type(rows, RetainedSample)
    if not kept:
        return None, []
    d = kept[-1].data
    retention = decision.data.retention_until if decision is not None else None
    view = {"vials": d.vials, "count": d.count, "location": d.location, "retention_until": retention,
            "entry": kept[-1].seq}
    return view, [Check("Retained samples", "pass" if not d.short else "attention",
                        f"{d.count} vials {d.vials} kept at {d.location}; retention "
                        f"{retention or 'date set at QA release'}", (kept[-1].seq,))]


def _decision_view(decision: TypedEntry[Release | Rejection] | None) -> dict[str, Any] | None:
    """The QA decision as the review shows it."""
    if decision is None:
        return None
    d = decision.data
    return {"decision": d.decision, "by": decision.actor, "name": d.name, "ts": format_ts(decision.ts),
            "verdict": d.verdict, "expiry": d.expiry, "retention_until": d.retention_until,
            "reason": d.reason if isinstance(d, Rejection) else None, "entry": decision.seq}


def quality_views(snap: RecordSnapshot, rows: Rows) -> dict[str, Any]:
    """Viable results with limits, deviations with 8D state, media-fill outcome, retained samples, QA decision, and
    the checks they make."""
    from fillfinish.quality import deviations as quality_deviations

    viable_rows, viable_checks, viable_reasons = _viable(snap, rows)
    media_view, media_checks = _media_fill(snap, rows)
    decision = _decision(rows)
    retained_view, retained_checks = _retained(rows, decision)
    return {"checks": viable_checks + media_checks + retained_checks, "viable": viable_rows,
            "viable_reasons": viable_reasons,
            "deviations": [d.as_dict() for d in quality_deviations.fold(snap.header, [r.entry for r in rows])],
            "media_fill": media_view, "retained": retained_view, "decision": _decision_view(decision)}
