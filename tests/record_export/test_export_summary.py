"""Review by exception: the compliance summary and the exceptions list derived from a record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from fillfinish.record import RecordStore
from fillfinish.record.export import EXCEPTION_KINDS, load_snapshot, review
from fillfinish.record.export.summary import fmt_duration
from fillfinish.record.verify import BatchResult, Problem


def test_summary_lists_each_exception_kind(full_record: tuple[RecordStore, str]) -> None:
    """Every kind of exception in the record shows up in the exceptions list, in seq order."""
    store, batch = full_record
    summary = review(load_snapshot(store, batch))
    counts = summary.exception_counts()
    assert set(counts) == set(EXCEPTION_KINDS), set(EXCEPTION_KINDS) - set(counts)
    assert counts["hold"] == 2 and counts["intervention"] == 3 and counts["out_of_tolerance"] == 1
    seqs = [item.seq for item in summary.exceptions]
    assert seqs == sorted(seqs)
    vial = next(i for i in summary.exceptions if i.kind == "out_of_tolerance")
    assert vial.title == "vial 2 rejected" and "93.1 mg" in vial.detail and "100.0 mg +/- 2.0 mg" in vial.detail


def test_holds_have_duration_and_people(full_record: tuple[RecordStore, str]) -> None:
    """A hold runs from entering Holding to leaving Held, names who held and who released it."""
    store, batch = full_record
    holds = [i for i in review(load_snapshot(store, batch)).exceptions if i.kind == "hold"]
    first, second = holds
    assert first.title == "hold: particles above the action limit"
    assert "bob" in first.people and first.duration_s is not None and first.duration_s >= 600
    assert second.people[0] == "carol" and second.duration_s is not None and 300 <= second.duration_s < 600
    assert fmt_duration(second.duration_s).endswith("s")


def test_alarm_folds_in_ack_and_clear(full_record: tuple[RecordStore, str]) -> None:
    """An alarm item carries who acknowledged it and how long it lasted until cleared."""
    store, batch = full_record
    alarm = next(i for i in review(load_snapshot(store, batch)).exceptions if i.kind == "alarm")
    assert alarm.people == ("bob",) and "acknowledged by bob" in alarm.detail and "cleared at" in alarm.detail
    assert alarm.duration_s is not None and alarm.duration_s > 600 and len(alarm.entries) == 3


def test_compliance_checks(full_record: tuple[RecordStore, str]) -> None:
    """Open deviation, failed line check, faults and the not-suitable disposition are failed checks."""
    store, batch = full_record
    summary = review(load_snapshot(store, batch))
    status = {check.name: check.status for check in summary.checks}
    assert status["Record integrity (hash chain)"] == "pass"
    assert status["Deviations"] == "fail" and status["Line clearance checks"] == "fail"
    assert status["Environmental monitoring"] == "fail"
    assert status["Disposition"] == "fail" and summary.suitable is False
    assert status["UV decontamination cycle"] == "pass" and status["Vial reconciliation"] == "pass"
    assert status["Interventions and holds"] == "attention"
    assert [s.name for s in summary.signatures] == ["alice", "Dana QA"]
    assert [s.meaning for s in summary.signatures] == ["performed", "reviewed"]
    assert summary.as_dict()["exception_counts"] == summary.exception_counts()


def test_clean_batch_has_no_exceptions(clean_record: tuple[RecordStore, str]) -> None:
    """A batch that ran as planned: no exceptions, every check passes, suitable."""
    store, batch = clean_record
    summary = review(load_snapshot(store, batch))
    assert summary.exceptions == ()
    assert {c.status for c in summary.checks} == {"pass"}, [c for c in summary.checks if c.status != "pass"]
    assert summary.suitable is True and summary.final_state == "Complete"
    assert summary.vial_counts == {"accepted": 10, "rejected": 0, "uncertain": 0}
    assert summary.reconciliation["filled"] == 8 and summary.reconciliation["samples"] == 2


def test_tampered_record_fails_integrity(clean_record: tuple[RecordStore, str],
                                         tamper: Callable[..., None]) -> None:
    """A record changed behind the store's back is reported NOT INTACT, naming the entry."""
    store, batch = clean_record
    tamper(store, "UPDATE entry SET actor = 'mallory' WHERE batch_id = :b AND seq = 5", b=batch)
    summary = review(load_snapshot(store, batch))
    assert summary.integrity_ok is False and summary.integrity_text.startswith("NOT INTACT: entry 5")
    check = summary.checks[0]
    assert check.status == "fail" and check.entries == (5,)


def test_unverified_snapshot(clean_record: tuple[RecordStore, str]) -> None:
    """A snapshot built without verification says so rather than claiming the record is intact."""
    store, batch = clean_record
    snap = replace(load_snapshot(store, batch), integrity=None, ledger=None)
    summary = review(snap)
    assert summary.integrity_ok is None and summary.checks[0].status == "n/a"
    bad = replace(snap, integrity=BatchResult(batch, False, 3, Problem(2, "changed", "x", "state")))
    assert review(bad).integrity_text == "NOT INTACT: entry 2 (state): changed: x"
