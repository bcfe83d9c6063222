"""QA review and release: every refusal (integrity, disposition, open deviation, role, segregation) and the release."""

from __future__ import annotations

import pytest

from fillfinish.people import (
    PermissionDenied,
    ReleaseRefused,
    UserStore,
    close_deviation,
    open_deviations,
    readiness,
    release,
)
from fillfinish.record import RecordStore
from fillfinish.record.export.summary import load_snapshot, review
from people_helpers import PASSWORDS, alarm_seq, run_batch, tamper


def test_open_deviation_blocks_release_until_qa_closes_it(store: RecordStore, users: UserStore) -> None:
    """An open deviation refuses release; QA closes it with root cause + CAPA (signed); then QA releases."""
    batch = run_batch(store)
    alarm = alarm_seq(store, batch)
    with pytest.raises(ReleaseRefused, match=f"deviation open .*alarm entry {alarm}") as refused:
        release(store, batch, "quinn", PASSWORDS["quinn"], users=users)
    assert len(refused.value.reasons) == 1
    assert store.entries(batch, kinds=["release", "signature"]) == []

    closed, sig = close_deviation(store, batch, alarm, "quinn", PASSWORDS["quinn"], "door gasket worn",
                                  "replace gasket; add to PM plan", users=users)
    assert closed.data["event"] == "closed" and closed.data["root_cause"] == "door gasket worn"
    assert sig.data["meaning"] == "approved" and sig.data["signed_hash"] == closed.hash
    assert open_deviations(store.entries(batch)) == []

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


def test_close_deviation_refusals(store: RecordStore, users: UserStore) -> None:
    """Wrong alarm entry (the open ones are listed), missing CAPA, a non-QA user."""
    batch = run_batch(store)
    alarm = alarm_seq(store, batch)
    with pytest.raises(ReleaseRefused, match=f"no open deviation for alarm entry 1; open: alarm entry {alarm}"):
        close_deviation(store, batch, 1, "quinn", PASSWORDS["quinn"], "x", "y", users=users)
    with pytest.raises(ReleaseRefused, match="root cause and CAPA"):
        close_deviation(store, batch, alarm, "quinn", PASSWORDS["quinn"], "x", " ", users=users)
    with pytest.raises(PermissionDenied, match="role supervisor"):
        close_deviation(store, batch, alarm, "sam", PASSWORDS["sam"], "x", "y", users=users)
    close_deviation(store, batch, alarm, "quinn", PASSWORDS["quinn"], "x", "y", users=users)
    with pytest.raises(ReleaseRefused, match="no open deviation"):
        close_deviation(store, batch, alarm, "quinn", PASSWORDS["quinn"], "x", "y", users=users)


def test_only_qa_releases(store: RecordStore, users: UserStore) -> None:
    """An operator, supervisor or admin cannot release, whatever the batch."""
    batch = run_batch(store, alarm=False)
    for name in ("olga", "sam", "root"):
        with pytest.raises(PermissionDenied, match="needs role qa"):
            release(store, batch, name, PASSWORDS[name], users=users)


def test_segregation_of_duties(store: RecordStore, users: UserStore) -> None:
    """QA may not release a batch they operated (header operator / run_start actor) or intervened in."""
    operated = run_batch(store, operator="quinn", alarm=False)
    with pytest.raises(ReleaseRefused, match="quinn took part in performing this batch"):
        release(store, operated, "quinn", PASSWORDS["quinn"], users=users)
    intervened = run_batch(store, alarm=False)
    store.append(intervened, "alarm_ack", {"alarm_id": 1}, "qiana")
    store.append(intervened, "disposition", {"verdict": "suitable for cell therapy grade", "suitable": True}, "system")
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
