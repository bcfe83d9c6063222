"""QA release and rejection: expiry mandatory, retention date stored, simulation never released, rejection signed."""

from __future__ import annotations

import datetime as dt

import pytest

from fillfinish.people import UserStore
from fillfinish.quality.release import ReleaseRefused, reject, release
from fillfinish.record import RecordStore
from fillfinish.record.export.summary import load_snapshot, review
from quality_helpers import PASSWORDS, enter_all_viable, run_batch


def test_release_stores_the_retention_date_and_retained_samples(store: RecordStore, users: UserStore) -> None:
    """The release entry names the decision, verdict, expiry, retention date (latest rule) and retained vials."""
    batch = run_batch(store)
    enter_all_viable(store, users, batch)
    with pytest.raises(ReleaseRefused, match="expiry date is mandatory"):
        release(store, batch, "quinn", PASSWORDS["quinn"], expiry=None, users=users)  # type: ignore[arg-type]
    result = release(store, batch, "quinn", PASSWORDS["quinn"], expiry=dt.date(2029, 6, 30), users=users)
    d = result.release.data
    assert d["decision"] == "released" and d["expiry"] == "2029-06-30" and d["retention_until"] == "2032-06-30"
    assert d["retained_samples"] == {"vials": [3], "location": "QC store"}
    summary = review(load_snapshot(store, batch))
    assert summary.qa_decision and summary.qa_decision["decision"] == "released"
    assert "RELEASED by Quinn Q. Assurance (quinn)" in summary.qa_decision_text()
    assert "2032-06-30" in summary.qa_decision_text()
    assert summary.retained_samples and summary.retained_samples["retention_until"] == "2032-06-30"
    with pytest.raises(ReleaseRefused, match="already released"):
        reject(store, batch, "qiana", PASSWORDS["qiana"], reason="x", expiry=dt.date(2029, 6, 30), users=users)


def test_simulation_is_never_released(store: RecordStore, users: UserStore) -> None:
    """A batch whose header mode is 'simulation' is refused (the mode comes from the recordcore work)."""
    batch = run_batch(store)
    enter_all_viable(store, users, batch)
    import dataclasses

    from fillfinish.quality import release as rel

    real = store.batch

    def as_simulation(batch_id: str):  # type: ignore[no-untyped-def]
        header = real(batch_id)
        return dataclasses.replace(header, mode="simulation")

    store.batch = as_simulation  # type: ignore[method-assign]
    try:
        with pytest.raises(rel.ReleaseRefused, match="simulation mode"):
            release(store, batch, "quinn", PASSWORDS["quinn"], expiry=dt.date(2029, 6, 30), users=users)
    finally:
        store.batch = real  # type: ignore[method-assign]


def test_qa_rejects_with_a_reason_even_with_results_pending(store: RecordStore, users: UserStore) -> None:
    """Rejection needs a reason and a non-performer QA; open deviations and missing results do not block it."""
    batch = run_batch(store, alarms=1)
    with pytest.raises(ReleaseRefused, match="needs a reason"):
        reject(store, batch, "quinn", PASSWORDS["quinn"], reason=" ", expiry=dt.date(2028, 1, 1), users=users)
    out = reject(store, batch, "quinn", PASSWORDS["quinn"], reason="particle excursion during fill",
                 expiry=dt.date(2028, 1, 1), users=users)
    assert out.release.kind == "rejection" and out.release.data["decision"] == "rejected"
    assert out.release.data["retention_until"] == "2031-" + out.signature.ts.strftime("%m-%d")
    with pytest.raises(ReleaseRefused, match="already rejected"):
        release(store, batch, "qiana", PASSWORDS["qiana"], expiry=dt.date(2028, 1, 1), users=users)
    own = run_batch(store, operator="qiana")
    with pytest.raises(ReleaseRefused, match="segregation of duties"):
        reject(store, own, "qiana", PASSWORDS["qiana"], reason="x", expiry=dt.date(2028, 1, 1), users=users)
