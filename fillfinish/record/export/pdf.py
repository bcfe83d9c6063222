"""The printable batch record (reportlab): header, disposition, signatures, integrity, review by exception, plots,
deviations and every entry, with 'page X of Y', the batch id and the generation time (UTC) on every page.

Text is set in Helvetica (PDF standard font, WinAnsi) so the PDF's text stays plain and searchable; when the record
holds characters WinAnsi cannot show (e.g. a name in Polish or Greek), the whole document uses DejaVu Sans from
matplotlib's data folder instead, embedded, so no character is lost or replaced on paper.
"""

from __future__ import annotations

import io
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from fillfinish.record.chain import format_ts
from fillfinish.record.export.pdf_layout import (  # noqa: F401 - layout constants stay importable from here
    EXCEPTION_ENTRY_KINDS,
    FRAME_WIDTH,
    MARGIN,
    PAGE,
    STATUS_COLOURS,
    ROWS_PER_TABLE,
    _canvas_class,
    _fonts,
    _grid,
    _p,
    _p_lines,
    _Styles,
    data_text,
)
from fillfinish.record.export.plots import render_plots
from fillfinish.record.typed_entries import of_type, read_typed
from fillfinish.record.vocabulary import DeviationEvent
from fillfinish.record.export.summary import (
    EXCEPTION_KINDS,
    RecordSnapshot,
    ReviewSummary,
    fmt_duration,
    fmt_time,
    review,
)


# ---------------------------------------------------------------------------------------------------- fonts, styles


# ---------------------------------------------------------------------------------------------------- page furniture


# ---------------------------------------------------------------------------------------------------- sections
def _header_section(snap: RecordSnapshot, summary: ReviewSummary, st: _Styles) -> list[Flowable]:
    """Title and the batch header (product, lot, recipe and its hash, operator, dates, hashes)."""
    h = snap.header
    label = ParagraphStyle("label", parent=st.small, fontName=st.bold)
    rows = [
        ("Product", f"{h.product}", "Product code", h.product_code),
        ("Lot", h.lot, "Mode", h.mode.replace("_", " ")),
        ("Recipe", f"{h.recipe_name}, version {h.recipe_version}", "Planned vials", str(h.planned_vials)),
        ("Operator", h.operator, "Created", fmt_time(h.created_at)),
        ("Final state", summary.final_state, "Entries", str(len(snap.entries))),
    ]
    data: list[list[Any]] = [[_p(a, label), _p(b, st.small), _p(c, label), _p(d, st.small)] for a, b, c, d in rows]
    data.append([_p("Recipe SHA-256", label), _p(h.recipe_hash, st.mono), "", ""])
    data.append([_p("Header hash", label), _p(h.header_hash, st.mono), "", ""])
    table = _grid(data, [2.6 * cm, 6.4 * cm, 2.6 * cm, FRAME_WIDTH - 11.6 * cm], header=False,
                  extra=[("SPAN", (1, 5), (3, 5)), ("SPAN", (1, 6), (3, 6)),
                         ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef2f6")),
                         ("BACKGROUND", (2, 0), (2, 4), colors.HexColor("#eef2f6"))])
    return [_p(f"Batch record {h.batch_id}", st.h1), table, Spacer(1, 8)]


def _disposition_box(summary: ReviewSummary, st: _Styles) -> Flowable:
    """The disposition as a coloured box: verdict, reasons with their entries, reconciliation."""
    if summary.verdict is None:
        colour, title = STATUS_COLOURS["n/a"], "DISPOSITION: none recorded (the batch has not ended)"
    else:
        colour = STATUS_COLOURS["pass" if summary.suitable else "fail"]
        title = f"DISPOSITION: {summary.verdict}"
    parts: list[Any] = [_p(title, st.box_title)]
    for reason in summary.disposition_reasons:
        refs = reason.get("entries") or []
        where = f" (entries {', '.join(str(r) for r in refs)})" if refs else ""
        parts.append(_p(f"- {reason.get('reason', '')}{where}", st.small))
    rec = summary.reconciliation
    parts.append(_p(f"Reconciliation: planned {rec.get('planned')} = filled {rec.get('filled')} + rejected "
                    f"{rec.get('rejected')} + samples {rec.get('samples')} (unaccounted {rec.get('unaccounted')}, "
                    f"uncertain {rec.get('uncertain')})", st.small))
    if summary.disposition_seq is not None:
        tail = ("the final QA decision is shown above." if summary.qa_decision else
                "release needs the signature of an authorised person.")
        parts.append(_p(f"Recorded as entry {summary.disposition_seq}: the system's proposal computed from the "
                        f"record; {tail}", st.small))
    box = Table([[parts]], colWidths=[FRAME_WIDTH])
    box.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colour),
                             ("BOX", (0, 0), (-1, -1), 1.2, colors.HexColor("#44505c")),
                             ("LEFTPADDING", (0, 0), (-1, -1), 8), ("TOPPADDING", (0, 0), (-1, -1), 6),
                             ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
    return box


def _decision_box(summary: ReviewSummary, st: _Styles) -> Flowable:
    """The final state on the first page: released or rejected, by whom, when, the retention date; or pending."""
    view = summary.qa_decision  # the review's view of the QA decision entry (review_quality._decision_view)
    if not view:
        colour, title = STATUS_COLOURS["n/a"], "QA DECISION: pending (release needs the signature of an authorised person)"
        lines: list[str] = []
    else:
        colour = STATUS_COLOURS["pass" if view.get("decision") == "released" else "fail"]
        title = f"QA DECISION: {str(view.get('decision')).upper()} by {view.get('name')} ({view.get('by')}) on {view.get('ts')}"
        lines = [f"Verdict: {view.get('verdict')}", f"Product expiry {view.get('expiry')}; keep this record until "
                 f"{view.get('retention_until')} (retention date; not purged before it)"]
        if view.get("reason"):
            lines.append(f"Reason: {view['reason']}")
        lines.append(f"Decision entry {view.get('entry')}, signed (see electronic signatures).")
    cell = [_p(title, st.box_title)] + [_p(line, st.small) for line in lines]
    box = Table([[cell]], colWidths=[FRAME_WIDTH])
    box.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colour),
                             ("BOX", (0, 0), (-1, -1), 1.2, colors.HexColor("#44505c")),
                             ("LEFTPADDING", (0, 0), (-1, -1), 8), ("TOPPADDING", (0, 0), (-1, -1), 6),
                             ("BOTTOMPADDING", (0, 0), (-1, -1), 6)]))
    return box


def _viable_section(summary: ReviewSummary, st: _Styles) -> list[Flowable]:
    """Viable monitoring results with their limits, reader and verifier; media fill and retained samples."""
    out: list[Flowable] = []
    if summary.viable:
        out.append(_p("Viable monitoring (Annex 1 9.24-9.31)", st.h2))
        rows: list[list[Any]] = [[_p(t, st.small) for t in ("Sample", "Location", "Grade", "Limit", "CFU", "Level",
                                                              "Read by", "Verified by")]]
        for v in summary.viable:
            rows.append([_p(f"{v['sample_id']} {v['type']}", st.small), _p(v["location"], st.small),
                         _p(v["grade"], st.small), _p(v["limits"], st.small),
                         _p("-" if v["cfu"] is None else v["cfu"], st.small), _p(v["level"] or "missing", st.small),
                         _p(v["reader"] or "-", st.small), _p(v["verified_by"] or "-", st.small)])
        out.append(_grid(rows, [2.6 * cm, 3.6 * cm, 1.2 * cm, 3.2 * cm, 1.1 * cm, 1.5 * cm, 2.1 * cm,
                                FRAME_WIDTH - 15.3 * cm], repeat=True))
    m = summary.media_fill
    if m:
        out.append(_p("Media fill outcome (APS)", st.h2))
        out.append(_p(f"{'PASSED' if m.get('passed') else 'FAILED'}: filled {m.get('units_filled')}, incubated "
                      f"{m.get('incubated')}, growth {m.get('growth')}, not incubated {m.get('not_incubated')} "
                      f"{m.get('justification') or ''}; read by {m.get('reader')}, verified by {m.get('verifier')}; "
                      f"line {m.get('line_id')}; operators {', '.join(m.get('operators') or [])}", st.body))
    r = summary.retained_samples
    if r:
        out.append(_p("Retained samples", st.h2))
        out.append(_p(f"{r.get('count')} vials {r.get('vials')} at {r.get('location')}; retention until "
                      f"{r.get('retention_until') or 'the date set at QA release'}", st.body))
    return out


def _signatures_section(summary: ReviewSummary, st: _Styles) -> list[Flowable]:
    """21 CFR 11.50: every signature with printed name, date and time (UTC) and meaning."""
    out: list[Flowable] = [_p("Electronic signatures (21 CFR 11.50)", st.h2)]
    if not summary.signatures:
        return out + [_p("No signature recorded.", st.body)]
    rows: list[list[Any]] = [[_p(t, st.small) for t in ("Printed name", "Date and time", "Meaning", "Entry")]]
    for sig in summary.signatures:
        meaning = sig.meaning if sig.valid else f"{sig.meaning} - NOT VALID ({sig.why})"
        rows.append([_p(sig.name, st.small), _p(fmt_time(sig.ts), st.small),
                     _p(meaning, st.small if sig.valid else st.tiny_red), _p(f"{sig.seq} ({sig.entry_kind})", st.small)])
    return out + [_grid(rows, [5 * cm, 4.2 * cm, 4 * cm, FRAME_WIDTH - 13.2 * cm])]


def _integrity_section(snap: RecordSnapshot, summary: ReviewSummary, st: _Styles) -> list[Flowable]:
    """The verify result of the hash chain (and of the global ledger), with the last entry hash."""
    ok = summary.integrity_ok
    colour = STATUS_COLOURS["n/a" if ok is None else "pass" if ok else "fail"]
    lines = [f"Hash chain: {summary.integrity_text}"]
    if snap.ledger is not None:
        led = snap.ledger
        head = f"head {led.head[0]}:{led.head[1][:16]}..." if led.head else "empty"
        lines.append(f"Global ledger: {'intact' if led.ok else 'NOT INTACT'} ({led.rows_checked} rows, {head})"
                     + (f": {led.problem.describe('row')}" if led.problem else ""))
    if snap.entries:
        lines.append(f"Last entry hash: {snap.entries[-1].hash}")
    lines.append("Verified when this document was generated; re-check any time with `fillfinish record verify "
                 f"{snap.header.batch_id}`.")
    cell = [_p("RECORD INTACT" if ok else "RECORD NOT INTACT" if ok is False else "NOT VERIFIED", st.box_title)]
    cell += [_p(line, st.small) for line in lines]
    box = Table([[cell]], colWidths=[FRAME_WIDTH])
    box.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), colour),
                             ("BOX", (0, 0), (-1, -1), 0.8, colors.HexColor("#44505c")),
                             ("LEFTPADDING", (0, 0), (-1, -1), 8)]))
    return [_p("Record integrity (21 CFR 11.10(a))", st.h2), box]


def _review_section(summary: ReviewSummary, st: _Styles) -> list[Flowable]:
    """Compliance summary table and the exceptions list (review by exception, EU GMP Chapter 4)."""
    out: list[Flowable] = [_p("Review by exception: compliance summary", st.h2)]
    rows: list[list[Any]] = [[_p(t, st.small) for t in ("Check", "Result", "Evidence", "Entries")]]
    extra: list[tuple[Any, ...]] = []
    for i, check in enumerate(summary.checks, start=1):
        refs = ", ".join(str(s) for s in check.entries[:12]) + (" ..." if len(check.entries) > 12 else "")
        rows.append([_p(check.name, st.small), _p(check.status.upper(), st.small), _p(check.detail, st.small),
                     _p(refs, st.small)])
        extra.append(("BACKGROUND", (1, i), (1, i), STATUS_COLOURS.get(check.status, colors.white)))
    out.append(_grid(rows, [4.4 * cm, 1.9 * cm, FRAME_WIDTH - 8.6 * cm, 2.3 * cm], repeat=True, extra=extra))

    counts = summary.exception_counts()
    text = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items()) or "none"
    out.append(_p(f"Exceptions ({len(summary.exceptions)}): {text}", st.h2))
    if not summary.exceptions:
        out.append(_p("No alarm, deviation, out-of-tolerance value, intervention, hold, fault or recovery is "
                      "recorded for this batch.", st.body))
        return out
    rows = [[_p(t, st.small) for t in ("Entry", "Time (UTC)", "Kind", "What", "People", "Duration")]]
    for item in summary.exceptions:
        what = [item.title, item.detail] if item.detail else [item.title]
        rows.append([_p(item.seq, st.small), _p(fmt_time(item.ts).removesuffix(" UTC"), st.small),
                     _p(item.kind.replace("_", " "), st.small), _p_lines(what, st.small),
                     _p(", ".join(item.people) or "-", st.small), _p(fmt_duration(item.duration_s), st.small)])
    out.append(_grid(rows, [1.1 * cm, 2.6 * cm, 2.2 * cm, FRAME_WIDTH - 10.2 * cm, 2.5 * cm, 1.8 * cm],
                     repeat=True))
    return out


def _plots_section(snap: RecordSnapshot, st: _Styles) -> list[Flowable]:
    """Every plot the record has data for, each kept on one page with its title."""
    plots = render_plots(snap)
    if not plots:
        return []
    out: list[Flowable] = [PageBreak(), _p("Trends", st.h2)]
    for title, png in plots.items():
        image = Image(io.BytesIO(png))
        scale = FRAME_WIDTH / image.imageWidth
        image.drawWidth, image.drawHeight = FRAME_WIDTH, image.imageHeight * scale
        out.append(KeepTogether([_p(title, ParagraphStyle("cap", parent=st.body, fontName=st.bold)), image,
                                 Spacer(1, 8)]))
    return out


def _deviations_8d(summary: ReviewSummary, st: _Styles) -> list[Flowable]:
    """Each deviation (grouped per event) with its number, 8D state, classification, impact and closure."""
    out: list[Flowable] = []
    label = ParagraphStyle("d8label", parent=st.small, fontName=st.bold)
    for dev in summary.deviations:
        rows: list[list[Any]] = [[_p(f"Deviation {dev['number'] or '(not numbered yet)'}", label),
                                  _p(f"{dev['state']}; alarm entries {dev['alarm_entries']}", st.small)],
                                 [_p("what", st.small), _p(dev["title"], st.small)]]
        for key, value in dev["fields"].items():
            rows.append([_p(key.replace("_", " "), st.small), _p(value, st.small)])
        out += [KeepTogether(_grid(rows, [3.5 * cm, FRAME_WIDTH - 3.5 * cm], header=True)), Spacer(1, 5)]
    return out


def _deviations_section(snap: RecordSnapshot, st: _Styles) -> list[Flowable]:
    """Every deviation entry in full, with the alarm that opened it."""
    out: list[Flowable] = [_p("Deviations", st.h2)]
    out += _deviations_8d(review(snap), st)
    deviations = of_type(read_typed(snap.entries), DeviationEvent)
    if not deviations:
        return out + [_p("No deviation recorded for this batch.", st.body)]
    by_seq = {e.seq: e for e in snap.entries}
    label = ParagraphStyle("dlabel", parent=st.small, fontName=st.bold)
    for dev in deviations:
        entry, d = dev.entry, dev.data
        rows: list[list[Any]] = [[_p(f"Deviation, entry {entry.seq}", label),
                                  _p(f"{d.event} at {fmt_time(entry.ts)} by {entry.actor}", st.small)]]
        fields = d.model_dump(by_alias=True, exclude_none=True)
        for key in sorted(fields):
            if key != "event":
                rows.append([_p(key.replace("_", " "), st.small),
                             _p(data_text({key: fields[key]}).split("=", 1)[1], st.small)])
        alarm = by_seq.get(d.alarm_entry) if d.alarm_entry is not None else None
        if alarm is not None:
            rows.append([_p(f"alarm (entry {alarm.seq})", st.small),
                         _p(f"{fmt_time(alarm.ts)}: {data_text(alarm.data)}", st.small)])
        out += [KeepTogether(_grid(rows, [3.5 * cm, FRAME_WIDTH - 3.5 * cm], header=True)), Spacer(1, 5)]
    return out


def _entries_section(snap: RecordSnapshot, st: _Styles) -> list[Flowable]:
    """The full record: one row per entry (seq, time, kind, actor, all data, hash) in small print."""
    out: list[Flowable] = [PageBreak(), _p(f"Full record: {len(snap.entries)} entries", st.h2),
                           _p("Every entry as recorded, in order. Time is UTC; hash is the first 16 hex digits of "
                              "the entry's SHA-256 (full hashes in the JSON and BatchML exports).", st.small),
                           Spacer(1, 4)]
    head = ParagraphStyle("th", parent=st.tiny, fontName=st.bold)
    rows: list[list[Any]] = [[_p(t, head) for t in ("seq", "time (UTC)", "kind", "actor", "data", "hash")]]
    for entry in snap.entries:
        style = st.tiny_red if entry.kind in EXCEPTION_ENTRY_KINDS or entry.kind in EXCEPTION_KINDS else st.tiny
        rows.append([
            _p(entry.seq, st.tiny),
            _p(format_ts(entry.ts).replace("T", " ").rstrip("Z"), st.tiny),
            _p(entry.kind, style),
            _p(entry.actor, st.tiny),
            _p(data_text(entry.data), st.tiny),
            Paragraph(entry.hash[:16], ParagraphStyle("hash", parent=st.tiny, fontName="Courier")),
        ])
    widths = [0.9 * cm, 3.3 * cm, 2.1 * cm, 2.0 * cm, FRAME_WIDTH - 10.8 * cm, 2.5 * cm]
    shading = [("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f4f6f8")])]
    for start in range(1, max(len(rows), 2), ROWS_PER_TABLE):
        out.append(_grid([rows[0]] + rows[start:start + ROWS_PER_TABLE], widths, repeat=True, extra=shading))
    last = snap.entries[-1].hash if snap.entries else snap.header.header_hash
    out += [Spacer(1, 6), _p(f"End of record. Last hash: {last}", st.small)]
    return out


def pdf_bytes(snap: RecordSnapshot) -> bytes:
    """The batch record as a PDF document (A4)."""
    regular, bold = _fonts(snap)
    st = _Styles(regular, bold)
    summary = review(snap)
    h = snap.header
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN, bottomMargin=MARGIN,
        title=f"Batch record {h.batch_id}", author="fillfinish", creator="fillfinish record export",
        subject=f"{h.product} ({h.product_code}), lot {h.lot}: {summary.verdict or 'no disposition'}",
    )
    story: list[Flowable] = []
    story += _header_section(snap, summary, st)
    story.append(_decision_box(summary, st))
    story.append(Spacer(1, 6))
    story.append(_disposition_box(summary, st))
    story += _signatures_section(summary, st)
    story += _integrity_section(snap, summary, st)
    story += _review_section(summary, st)
    story += _viable_section(summary, st)
    story += _deviations_section(snap, st)
    story += _plots_section(snap, st)
    story += _entries_section(snap, st)
    doc.build(story, canvasmaker=_canvas_class(snap, regular))
    return buffer.getvalue()
