"""Exports of records written by the real controller (tests/fixtures/record.db): the hold-time check from entry
timestamps, the final QA decision on the PDF's first page, viable results with limits, deviations with their 8D
state, retained samples and the media-fill outcome in the review, the PDF, the JSON and the BatchML."""

from __future__ import annotations

import json

from fillfinish.record import RecordStore
from fillfinish.record.export import load_snapshot, render, review
from fillfinish.record.export.batchml import validate
from fillfinish.record.export.pdf import pdf_bytes
from test_export_pdf import pdf_text


def _first_page(data: bytes) -> str:
    """Text of the first page (everything drawn before its 'page 1 of N' footer)."""
    text = pdf_text(data)
    return text[: text.index("page 1 of")]


def test_hold_time_check_uses_the_entry_timestamps(clean_record: tuple[RecordStore, str]) -> None:
    """The controller writes no `t` in phase entries: the check is computed from the record timestamps."""
    store, batch = clean_record
    assert not any("t" in e.data for e in store.entries(batch, kinds=["phase"]))
    check = {c.name: c for c in review(load_snapshot(store, batch)).checks}["Hold times (Annex 1 8.18)"]
    assert check.status == "pass"
    assert "UV end to fill start" in check.detail and "fill duration" in check.detail and "(max 1 h 00 min)" in check.detail


def test_released_record_shows_its_final_state_on_page_one(clean_record: tuple[RecordStore, str]) -> None:
    """Released, by whom, when, the retention date: on the first page; no 'release needs a signature' left."""
    store, batch = clean_record
    summary = review(load_snapshot(store, batch))
    assert {c.status for c in summary.checks} == {"pass"}, [c for c in summary.checks if c.status != "pass"]
    keep = summary.qa_decision["retention_until"] if summary.qa_decision else None
    assert keep and keep >= "2031-11-30"  # expiry 2028-11-30 + 3 years at least (company rule)
    first = _first_page(pdf_bytes(load_snapshot(store, batch)))
    assert "QA DECISION: RELEASED by Dana QA (qa.dana)" in first
    assert f"keep this record until {keep}" in first
    assert "release needs the signature" not in first


def test_rejected_record_with_growth_and_8d_deviations(controller_record: tuple[RecordStore, str]) -> None:
    """Door opening: one deviation grouping the door alarm and its excursions, one for the grade A growth, both closed
    through 8D; viable check fails; rejection on page one; all of it in JSON and BatchML."""
    store, batch = controller_record
    snap = load_snapshot(store, batch)
    summary = review(snap)
    status = {c.name: c.status for c in summary.checks}
    assert status["Viable monitoring (Annex 1 9.24-9.31)"] == "fail"
    assert status["Deviations"] == "attention" and status["Retained samples"] == "pass"
    door, growth = summary.deviations
    assert len(door["alarm_entries"]) >= 2 and "enclosure door" in door["title"]
    assert growth["title"].startswith("viable monitoring: growth in grade A: SP-1")
    assert all(not d["open"] and d["classification"] == "major" and d["fields"]["d4_root_cause"] for d in
               summary.deviations)
    sp1 = summary.viable[0]
    assert (sp1["sample_id"], sp1["cfu"], sp1["level"], sp1["limits"]) == ("SP-1", 2, "action", "no growth")
    first = _first_page(pdf_bytes(snap))
    assert "QA DECISION: REJECTED by Erik Quality (qa.erik)" in first and "Reason: door opening" in first
    doc = json.loads(render(snap, "json"))["review"]
    assert doc["qa_decision"]["decision"] == "rejected" and doc["retained_samples"]["vials"] == [9, 10]
    assert [d["number"] for d in doc["deviations"]] == ["DEV-2026-0001", "DEV-2026-0002"]
    assert doc["viable_monitoring"][0]["verified_by"] == "sup.bob"
    xml = render(snap, "batchml")
    assert validate(xml) == []
    text = xml.decode()
    assert "deviation DEV-2026-0001" in text and "viable SP-1" in text and "QA decision: REJECTED" in text


def test_media_fill_outcome_in_the_exports(aps_record: tuple[RecordStore, str]) -> None:
    """The media fill's outcome (one positive unit: failed) in the review, the PDF and the BatchML."""
    store, batch = aps_record
    snap = load_snapshot(store, batch)
    summary = review(snap)
    assert {c.name: c.status for c in summary.checks}["Media fill outcome (APS)"] == "fail"
    assert summary.media_fill and summary.media_fill["growth"] == 1 and summary.retained_samples is None
    assert "FAILED: filled 10, incubated 10, growth 1" in pdf_text(pdf_bytes(snap))
    assert "media fill FAILED" in render(snap, "batchml").decode()
