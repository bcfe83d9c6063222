"""Deviations: site-prefixed numbers, one deviation per event (a door opening and the excursions it caused), 8D
fields with old and new values, QA closure by signature, the investigator cannot approve its own closure."""

from __future__ import annotations

import datetime as dt

import pytest

from fillfinish.people import PermissionDenied, UserStore
from fillfinish.quality import deviations
from fillfinish.quality.common import QualityRefused
from fillfinish.quality.release import ReleaseRefused, release
from fillfinish.record import RecordStore
from quality_helpers import PASSWORDS, alarm, enter_all_viable, later, run_batch
from step_clock import StepClock

FULL = {k: f"{k} text" for k in deviations.FIELDS_8D} | {"classification": "minor", "impact": "none on product"}


def test_one_event_is_one_numbered_deviation(store: RecordStore, clock: StepClock) -> None:
    """Door + two excursions within the window: one deviation FFX-2026-0001; an alarm 20 min later: a second one."""
    batch = run_batch(store, alarms=3)
    (dev,) = deviations.sync(store, batch)
    assert dev.number == "FFX-2026-0001" and len(dev.members) == 3 and dev.title.endswith("(+2 related alarms)")
    later(clock, 1200)
    alarm(store, batch, "hepa_dp", "HEPA differential pressure low")
    devs = deviations.sync(store, batch)
    assert [d.number for d in devs] == ["FFX-2026-0001", "FFX-2026-0002"]
    assert deviations.sync(store, batch) == devs  # numbering is written once
    other = run_batch(store, alarms=1)
    assert deviations.sync(store, other)[0].number == "FFX-2026-0003"
    assert store.verify().ok


def test_a_number_drawn_twice_goes_to_the_first_claim(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes draw the same free number at once: the later claim loses and draws again (no shared number)."""
    first = run_batch(store, alarms=1)
    assert deviations.sync(store, first)[0].number == "FFX-2026-0001"
    real = deviations._next_number
    stale = iter(["FFX-2026-0001"])  # what a racing process read before the first claim was written
    monkeypatch.setattr(deviations, "_next_number", lambda *a: next(stale, None) or real(*a))
    second = run_batch(store, alarms=1)
    assert deviations.sync(store, second)[0].number == "FFX-2026-0002"
    assert deviations.locate(store, "FFX-2026-0001") == first
    assert store.verify().ok


def test_investigator_cannot_approve_own_deviation(store: RecordStore, users: UserStore) -> None:
    """quinn (QA) writes the 8D and cannot close it; qiana (QA) closes by signature; release then proceeds."""
    batch = run_batch(store, alarms=2)
    enter_all_viable(store, users, batch)
    (dev,) = deviations.sync(store, batch)
    with pytest.raises(QualityRefused, match="8D not complete: missing d1_team"):
        deviations.close(store, dev.number, user="qiana", password=PASSWORDS["qiana"], users=users)
    deviations.update(store, dev.number, {"d1_team": "quinn, sam", "d2_problem": "door opened"}, user="sam",
                      password=PASSWORDS["sam"], users=users)
    deviations.update(store, dev.number, FULL | {"d1_team": "quinn, sam, olga"}, user="quinn",
                      password=PASSWORDS["quinn"], users=users)
    upd = store.entries(batch, kinds=["deviation"])[-1]
    assert upd.data["changes"]["d1_team"] == {"old": "quinn, sam", "new": "quinn, sam, olga"}
    with pytest.raises(QualityRefused, match="the investigator cannot approve its own closure"):
        deviations.close(store, dev.number, user="quinn", password=PASSWORDS["quinn"], users=users)
    with pytest.raises(PermissionDenied, match="needs role qa"):
        deviations.close(store, dev.number, user="sam", password=PASSWORDS["sam"], users=users)
    with pytest.raises(ReleaseRefused, match="deviation open: FFX-2026-0001"):
        release(store, batch, "qiana", PASSWORDS["qiana"], expiry=dt.date(2028, 1, 31), users=users)
    closed, sig = deviations.close(store, dev.number, user="qiana", password=PASSWORDS["qiana"], users=users)
    assert closed.data["classification"] == "minor" and sig.data["meaning"] == "approved"
    assert sig.data["signed_hash"] == closed.hash
    with pytest.raises(QualityRefused, match="already closed"):
        deviations.update(store, dev.number, {"impact": "changed"}, user="sam", password=PASSWORDS["sam"], users=users)
    assert release(store, batch, "quentin", PASSWORDS["quentin"], expiry=dt.date(2028, 1, 31), users=users)


def test_update_refusals(store: RecordStore, users: UserStore) -> None:
    """Unknown number, bad classification, nothing to change."""
    batch = run_batch(store, alarms=1)
    (dev,) = deviations.sync(store, batch)
    with pytest.raises(QualityRefused, match="no deviation numbered 'FFX-2026-0099'"):
        deviations.update(store, "FFX-2026-0099", {"impact": "x"}, user="sam", password=PASSWORDS["sam"], users=users)
    with pytest.raises(QualityRefused, match="classification 'huge' is not allowed; allowed: minor, major, critical"):
        deviations.update(store, dev.number, {"classification": "huge"}, user="sam", password=PASSWORDS["sam"],
                          users=users)
    with pytest.raises(QualityRefused, match="nothing to change"):
        deviations.update(store, dev.number, {}, user="sam", password=PASSWORDS["sam"], users=users)
