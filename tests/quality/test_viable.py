"""Viable monitoring: planned samples from the recipe, results signed by the reader and verified by a second person,
release refused until every result is in and verified, growth in grade A makes the batch not suitable."""

from __future__ import annotations

import datetime as dt

import pytest

from fillfinish.people import PermissionDenied, UserStore
from fillfinish.quality import deviations, viable
from fillfinish.quality.common import QualityRefused
from fillfinish.quality.release import ReleaseRefused, readiness, release
from fillfinish.record import RecordStore
from fillfinish.record.export.summary import load_snapshot, review
from quality_helpers import PASSWORDS, enter_all_viable, run_batch

EXPIRY = dt.date(2028, 12, 31)


def _add(store: RecordStore, users: UserStore, batch: str, sample: str, cfu: int, user: str = "olga") -> None:
    viable.add_result(store, batch, sample, cfu=cfu, incubation_start="2026-11-26T08:00",
                      incubation_end="2026-11-30T08:00", medium_lot="TSA-77", user=user, password=PASSWORDS[user],
                      users=users)


def test_release_refused_with_a_missing_plate_result(store: RecordStore, users: UserStore) -> None:
    """Every planned result must be in and verified: a missing settle plate blocks release, naming it."""
    batch = run_batch(store)
    _add(store, users, batch, "GP-1", 0)
    viable.verify_result(store, batch, "GP-1", user="sam", password=PASSWORDS["sam"], users=users)
    with pytest.raises(ReleaseRefused, match=r"viable monitoring results missing for 1 of 2 planned samples \(SP-1\)"):
        release(store, batch, "quinn", PASSWORDS["quinn"], expiry=EXPIRY, users=users)
    _add(store, users, batch, "SP-1", 0)
    with pytest.raises(ReleaseRefused, match=r"not verified by a second person \(SP-1\)"):
        release(store, batch, "quinn", PASSWORDS["quinn"], expiry=EXPIRY, users=users)
    viable.verify_result(store, batch, "SP-1", user="quinn", password=PASSWORDS["quinn"], users=users)
    result = release(store, batch, "qiana", PASSWORDS["qiana"], expiry=EXPIRY, users=users)
    assert result.release.data["verdict"] == "suitable for cell therapy grade"
    assert store.verify(batch).ok


def test_reader_signs_and_cannot_verify_own_result(store: RecordStore, users: UserStore) -> None:
    """The result is a chained entry with the reader's signature; the reader cannot be the verifier."""
    batch = run_batch(store)
    _add(store, users, batch, "SP-1", 0, user="sam")
    entries = store.entries(batch)
    result, sig = entries[-2], entries[-1]
    assert result.kind == "viable_result" and result.data["reader"] == "sam" and result.data["medium_lot"] == "TSA-77"
    assert sig.kind == "signature" and sig.data["meaning"] == "performed" and sig.data["signed_hash"] == result.hash
    with pytest.raises(QualityRefused, match="a second person must verify"):
        viable.verify_result(store, batch, "SP-1", user="sam", password=PASSWORDS["sam"], users=users)
    with pytest.raises(PermissionDenied, match="needs role qa or supervisor"):
        viable.verify_result(store, batch, "SP-1", user="olga", password=PASSWORDS["olga"], users=users)
    with pytest.raises(QualityRefused, match="already has a result"):
        _add(store, users, batch, "SP-1", 1)
    with pytest.raises(QualityRefused, match="no planned sample 'XX-9'; planned: SP-1, GP-1"):
        _add(store, users, batch, "XX-9", 0)


def test_growth_in_grade_a_makes_the_batch_not_suitable(store: RecordStore, users: UserStore) -> None:
    """One CFU on a grade A settle plate: action level, a deviation opens, and the release verdict is not suitable."""
    batch = run_batch(store)
    enter_all_viable(store, users, batch)  # all 0 CFU
    viable.add_result(store, batch, "SP-1", cfu=1, incubation_start="2026-11-26T08:00",
                      incubation_end="2026-11-30T08:00", medium_lot="TSA-77", user="olga", password=PASSWORDS["olga"],
                      organism="Micrococcus luteus", correction="plate re-read: one colony", users=users)
    st = viable.status(store.batch(batch), store.entries(batch))
    sp1 = st.samples[0]
    assert sp1.level == "action" and sp1.verified is None and sp1.result.data["supersedes"]
    summary = review(load_snapshot(store, batch))  # the proposal said suitable; the review already says not
    assert summary.suitable is False and summary.verdict == "not suitable for cell therapy grade"
    assert any("growth in grade A: SP-1" in r["reason"] for r in summary.disposition_reasons)
    state = readiness(store, batch)
    assert any("growth in grade A" in r["reason"] for r in state.final_verdict()[1])
    assert any("not verified" in b for b in state.blockers) and any("deviation open" in b for b in state.blockers)
    viable.verify_result(store, batch, "SP-1", user="sam", password=PASSWORDS["sam"], users=users)
    (dev,) = deviations.sync(store, batch)
    assert dev.members[0].data["source"] == "viable:SP-1"
    values = {k: "x" for k in deviations.FIELDS_8D} | {"classification": "major", "impact": "batch not CTG"}
    deviations.update(store, dev.number, values, user="sam", password=PASSWORDS["sam"], users=users)
    deviations.close(store, dev.number, user="quinn", password=PASSWORDS["quinn"], users=users)
    result = release(store, batch, "qiana", PASSWORDS["qiana"], expiry=EXPIRY, users=users)
    assert result.release.data["verdict"] == "not suitable for cell therapy grade"
    assert result.release.data["suitable"] is False
    assert any("growth in grade A: SP-1" in r["reason"] for r in result.release.data["reasons"])


def test_grade_b_limits_come_from_the_site_settings(store: RecordStore, users: UserStore) -> None:
    """Grade B glove print: Annex 1 Table 6 action 5 CFU, site alert 2 (defaults): 3 CFU is alert, 6 is action."""
    batch = run_batch(store)
    _add(store, users, batch, "GP-1", 3)
    gp = viable.status(store.batch(batch), store.entries(batch)).samples[1]
    assert gp.level == "alert" and gp.limits.action == 5.0
    assert not deviations.fold(store.batch(batch), store.entries(batch))
    viable.add_result(store, batch, "GP-1", cfu=6, incubation_start="2026-11-26T08:00",
                      incubation_end="2026-11-30T08:00", medium_lot="TSA-77", user="olga", password=PASSWORDS["olga"],
                      correction="recount", users=users)
    assert viable.status(store.batch(batch), store.entries(batch)).samples[1].level == "action"
    assert len(deviations.fold(store.batch(batch), store.entries(batch))) == 1


def test_bad_result_input_is_refused_with_reasons(store: RecordStore, users: UserStore) -> None:
    """Incubation end before start, a time that is not a time, no medium lot."""
    batch = run_batch(store)
    with pytest.raises(QualityRefused, match="is not after its start") as refused:
        viable.add_result(store, batch, "SP-1", cfu=0, incubation_start="2026-11-30T08:00",
                          incubation_end="2026-11-26T08:00", medium_lot=" ", user="olga", password=PASSWORDS["olga"],
                          users=users)
    assert "--medium-lot" in str(refused.value)
    with pytest.raises(QualityRefused, match="not a time"):
        viable.add_result(store, batch, "SP-1", cfu=0, incubation_start="yesterday", incubation_end="2026-11-26T08:00",
                          medium_lot="L", user="olga", password=PASSWORDS["olga"], users=users)
