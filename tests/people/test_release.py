"""QA review and release: every refusal (integrity, disposition, open deviation, role, segregation) and the release.

Release moved to fillfinish.quality.release (issue 9); the names stay reachable from fillfinish.people. Viable results
and the 8D deviation workflow have their own tests in tests/quality; here every planned viable result is entered and
verified so that the refusals tested are the ones named.
"""

from __future__ import annotations

import datetime as dt
import functools

import pytest

from fillfinish.people import PermissionDenied, ReleaseRefused, UserStore, readiness
from fillfinish.people import release as _release
from fillfinish.quality import deviations, viable
from fillfinish.record import RecordStore
from fillfinish.record.export.summary import load_snapshot, review
from people_helpers import PASSWORDS, run_batch, tamper

release = functools.partial(_release, expiry=dt.date(2028, 12, 31))
FULL_8D = {k: "x" for k in deviations.FIELDS_8D} | {"classification": "major", "impact": "not CTG"}


def viable_done(store: RecordStore, users: UserStore, batch: str) -> None:
    """Every planned viable sample entered by sam and verified by qiana (0 CFU)."""
    for s in viable.status(store.batch(batch), store.entries(batch)).samples:
        viable.add_result(store, batch, s.planned.sample_id, cfu=0, incubation_start="2026-11-26T08:00",
                          incubation_end="2026-11-30T08:00", medium_lot="TSA-1", user="sam",
                          password=PASSWORDS["sam"], users=users)
        viable.verify_result(store, batch, s.planned.sample_id, user="qiana", password=PASSWORDS["qiana"], users=users)


def close_all(store: RecordStore, users: UserStore, batch: str) -> None:
    """sam investigates (8D) and quinn closes every deviation of the batch."""
    for dev in deviations.sync(store, batch):
        deviations.update(store, dev.number, FULL_8D, user="sam", password=PASSWORDS["sam"], users=users)
        deviations.close(store, dev.number, user="quinn", password=PASSWORDS["quinn"], users=users)


def test_open_deviation_blocks_release_until_qa_closes_it(store: RecordStore, users: UserStore) -> None:
    """An open deviation refuses release; it is worked through 8D and closed by QA (signed); then QA releases."""
    batch = run_batch(store)
    viable_done(store, users, batch)
    with pytest.raises(ReleaseRefused, match="deviation open") as refused:
        release(store, batch, "quinn", PASSWORDS["quinn"], users=users)
    assert len(refused.value.reasons) == 1
    assert store.entries(batch, kinds=["release"]) == []

    close_all(store, users, batch)
    closed = store.entries(batch, kinds=["deviation"])[-1]
    sig = store.entries(batch)[-1]
    assert closed.data["event"] == "closed" and closed.data["root_cause"] == "x"
    assert sig.data["meaning"] == "approved" and sig.data["signed_hash"] == closed.hash
    assert readiness(store, batch).open_deviations == []

    result = release(store, batch, "quinn", PASSWORDS["quinn"], comment="reviewed by exception", users=users)
    assert result.signature.data["meaning"] == "released" and result.signature.data["name"] == "Quinn Q. Assurance"
    assert result.release.prev_hash == result.signature.hash
    assert result.release.data["verdict"] == "not suitable for cell therapy grade"
    assert result.release.data["signature_entry"] == result.signature.seq
    assert store.verify(batch).ok
    summary = review(load_snapshot(store, batch))
    assert {c.name: c.status for c in summary.checks}["Deviations"] == "attention"
    assert ("Quinn Q. Assurance", "released") in [(s.name, s.meaning) for s in summary.signatures]
    with pytest.raises(ReleaseRefused, match="already released"):
        release(store, batch, "qiana", PASSWORDS["qiana"], users=users)


def test_only_qa_releases(store: RecordStore, users: UserStore) -> None:
    """An operator, supervisor or admin cannot release, whatever the batch."""
    batch = run_batch(store, alarm=False)
    viable_done(store, users, batch)
    for name in ("olga", "sam", "root"):
        with pytest.raises(PermissionDenied, match="needs role qa"):
            release(store, batch, name, PASSWORDS[name], users=users)


def test_segregation_of_duties(store: RecordStore, users: UserStore) -> None:
    """QA may not release a batch they operated (header operator / run_start actor) or intervened in."""
    operated = run_batch(store, operator="quinn", alarm=False)
    viable_done(store, users, operated)
    with pytest.raises(ReleaseRefused, match="quinn took part in performing this batch"):
        release(store, operated, "quinn", PASSWORDS["quinn"], users=users)
    intervened = run_batch(store, alarm=False)
    viable_done(store, users, intervened)
    store.append(intervened, "alarm_ack", {"alarm_id": 1, "source": "particles"}, "qiana")
    store.append(intervened, "disposition", {"verdict": "suitable for cell therapy grade", "suitable": True, "reasons": [], "reconciliation": {}, "proposal": True, "pending": []}, "system")
    assert "qiana" in readiness(store, intervened).performers
    with pytest.raises(ReleaseRefused, match="segregation of duties"):
        release(store, intervened, "qiana", PASSWORDS["qiana"], users=users)
    assert release(store, intervened, "quinn", PASSWORDS["quinn"], users=users).release.data["suitable"] is True


def test_missing_disposition_and_bad_record_refused_with_all_reasons(store: RecordStore, users: UserStore) -> None:
    """No disposition + an open deviation + a tampered record: all three reasons at once, nothing written."""
    batch = run_batch(store, disposition=False)
    tamper(store, "UPDATE entry SET actor = 'mallory' WHERE batch_id = :b AND seq = 3", {"b": batch})
    with pytest.raises(ReleaseRefused) as refused:
        release(store, batch, "quinn", PASSWORDS["quinn"], users=users)
    text = " | ".join(refused.value.reasons)
    assert "does not verify" in text and "no disposition" in text and "deviation open" in text
    assert len(store.entries(batch, kinds=["signature", "release"])) == 0
