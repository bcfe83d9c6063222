"""PDF export and its plots: a real multi-page PDF with batch id, disposition and 'page X of Y'; plots are PNGs."""

from __future__ import annotations

import base64
import re
import zlib
from dataclasses import replace

from fillfinish.record import RecordStore
from fillfinish.record.export import load_snapshot
from fillfinish.record.export.pdf import pdf_bytes
from fillfinish.record.export.plots import check_weight_plot, particle_plot, render_plots, uv_plot

PNG = b"\x89PNG\r\n\x1a\n"


def pdf_text(data: bytes) -> str:
    """The text drawn by a reportlab PDF with standard fonts (no pdftotext/pypdf here): inflate the content streams
    and collect the literal strings of Tj operators."""
    out = []
    for match in re.finditer(rb"\d+ 0 obj\s*<<((?:(?!endobj).)*?)>>\s*stream\r?\n(.*?)endstream", data, re.S):
        head, body = match.group(1), match.group(2)
        if b"/Subtype /Image" in head:
            continue
        if b"ASCII85Decode" in head:
            body = base64.a85decode(body.strip().removesuffix(b"~>"))
        if b"FlateDecode" in head:
            body = zlib.decompress(body)
        for text in re.finditer(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", body):
            out.append(re.sub(rb"\\(.)", rb"\1", text.group(1)).decode("cp1252"))
    return "\n".join(out)


def page_count(data: bytes) -> int:
    """Number of page objects in the PDF."""
    return len(re.findall(rb"/Type\s*/Page(?!s)", data))


def test_pdf_pages_batch_id_and_disposition(full_record: tuple[RecordStore, str]) -> None:
    """Starts with %PDF, several pages each saying 'page X of Y', batch id, disposition, verify result."""
    store, batch = full_record
    data = pdf_bytes(load_snapshot(store, batch))
    assert data.startswith(b"%PDF-")
    pages = page_count(data)
    assert pages > 1
    text = pdf_text(data)
    assert [f"page {i} of {pages}" in text for i in range(1, pages + 1)] == [True] * pages
    assert text.count(batch) >= pages
    assert "DISPOSITION: not suitable for cell therapy grade" in text
    assert "RECORD INTACT" in text and "Electronic signatures (21 CFR 11.50)" in text
    assert "Dana QA" in text and "reviewed" in text
    assert "Exceptions (" in text and "deviation opened" in text
    assert f"Full record: {len(store.entries(batch))} entries" in text
    assert "generated 20" in text and " UTC" in text


def test_pdf_of_a_clean_batch(clean_record: tuple[RecordStore, str]) -> None:
    """A clean batch: suitable, no exceptions, still more than one page (entry list + trends)."""
    store, batch = clean_record
    data = pdf_bytes(load_snapshot(store, batch))
    text = pdf_text(data)
    assert page_count(data) > 1 and "DISPOSITION: suitable for cell therapy grade" in text
    assert "Exceptions (0): none" in text


def test_pdf_with_non_latin_text(clean_record: tuple[RecordStore, str]) -> None:
    """Text outside WinAnsi switches to an embedded Unicode font; a huge data value is cut; the PDF is produced."""
    store, batch = clean_record
    store.append(batch, "operator", {"command": "Hold", "reason": "Δ check ≥ 5 µm"}, "Łukasz")
    store.append(batch, "exception", {"message": "x" * 20000}, "system")  # longer than a page: cut, not a crash
    data = pdf_bytes(load_snapshot(store, batch))
    assert data.startswith(b"%PDF-") and b"DejaVuSans" in data and page_count(data) > 1


def test_plots_are_png(full_record: tuple[RecordStore, str]) -> None:
    """UV, particle and check-weight plots render to PNG bytes."""
    store, batch = full_record
    snap = load_snapshot(store, batch)
    for make in (uv_plot, particle_plot, check_weight_plot):
        png = make(snap)
        assert png is not None and png.startswith(PNG) and len(png) > 5000
    assert list(render_plots(snap)) == ["UV irradiance and dose", "Particle counts", "Check-weights"]


def test_plots_without_data(full_record: tuple[RecordStore, str]) -> None:
    """A record without measurements or vials has no plots (and the PDF still builds)."""
    store, batch = full_record
    snap = load_snapshot(store, batch)
    bare = replace(snap, entries=tuple(e for e in snap.entries if e.kind not in ("measurement", "vial", "uv_start")))
    assert render_plots(bare) == {}
    assert pdf_bytes(bare).startswith(b"%PDF-")


def test_pdf_marks_a_forged_signature_and_escapes_planted_lines(clean_record: tuple[RecordStore, str]) -> None:
    """A signature written through the API without a password shows NOT VALID; a reason with a newline cannot start
    a line of its own in the PDF (issue 6 points 4 and 7)."""
    store, batch = clean_record
    store.append(batch, "operator", {"command": "Hold", "reason": "check\n999 release qa.lindqvist suitable"}, "a.smith")
    head = store.last_entry(batch)
    assert head is not None
    store.append(batch, "signature", {"name": "Mallory", "user_id": "mallory", "role": "qa", "meaning": "released",
                                      "signed_hash": head.hash, "signed_seq": head.seq, "reason": ""}, "mallory")
    text = pdf_text(pdf_bytes(load_snapshot(store, batch)))
    assert "NOT VALID" in text
    assert not any(line.startswith("999 release") for line in text.splitlines())
