"""Electronic signatures (21 CFR 11.50, 11.70): chained signature entries bound to the hash of what they sign."""

from __future__ import annotations

import pytest

from fillfinish.people import AuthenticationError, PermissionDenied, SignatureRefused, UserStore, manifestations, sign
from fillfinish.people.signatures import check_signature
from fillfinish.record import RecordStore
from fillfinish.record.export.summary import signatures as summary_signatures
from people_helpers import BATCH_FIELDS, PASSWORDS, run_batch, tamper


def test_sign_appends_a_bound_signature_entry(store: RecordStore, users: UserStore) -> None:
    """The entry names printed name, user id, role, meaning, reason and the hash of the head it signs."""
    batch = run_batch(store, alarm=False)
    head = store.last_entry(batch)
    assert head is not None
    entry = sign(store, batch, "sam", PASSWORDS["sam"], "reviewed", "line clearance checked", users=users)
    assert entry.kind == "signature" and entry.actor == "sam" and entry.prev_hash == head.hash
    proof = {name: entry.data[name] for name in ("signed_at", "key_id", "proof")}
    assert {k: v for k, v in entry.data.items() if k not in proof} == {
        "name": "Sam Supervisor", "user_id": "sam", "role": "supervisor", "meaning": "reviewed",
        "signed_hash": head.hash, "signed_seq": head.seq, "reason": "line clearance checked"}
    assert len(proof["proof"]) == 64 and proof["key_id"] == store.site_key().fingerprint  # type: ignore[union-attr]
    assert store.verify(batch).ok
    [shown] = manifestations(store, batch)
    assert shown.bound and shown.signed_seq == head.seq
    line = shown.line()
    assert "Sam Supervisor (sam, supervisor) reviewed 2026-11-25 09:30" in line and f"entry {head.seq}" in line
    # the review-by-exception summary shows it too (11.50: wherever the record is shown)
    assert [(s.name, s.meaning) for s in summary_signatures(store.entries(batch))][-1] == ("Sam Supervisor", "reviewed")


def test_wrong_password_writes_nothing(store: RecordStore, users: UserStore) -> None:
    """A failed authentication adds no entry to the record (and is counted)."""
    batch = run_batch(store, alarm=False)
    before = len(store.entries(batch))
    with pytest.raises(AuthenticationError):
        sign(store, batch, "sam", "not-my-password", "reviewed", users=users)
    assert len(store.entries(batch)) == before
    assert users.get("sam").failed_attempts == 1


def test_meaning_and_role_are_checked(store: RecordStore, users: UserStore) -> None:
    """Only the listed meanings; `roles` restricts who may sign."""
    batch = run_batch(store, alarm=False)
    with pytest.raises(SignatureRefused, match="allowed: performed, reviewed, approved, released"):
        sign(store, batch, "sam", PASSWORDS["sam"], "liked", users=users)
    with pytest.raises(PermissionDenied, match="needs qa"):
        sign(store, batch, "olga", PASSWORDS["olga"], "approved", users=users, roles=("qa",))


def test_signature_on_empty_batch_signs_the_header(store: RecordStore, users: UserStore) -> None:
    """With no entries yet, the signature signs the header hash (seq 0)."""
    batch = store.create_batch(**BATCH_FIELDS)
    entry = sign(store, batch, "olga", PASSWORDS["olga"], "performed", users=users)
    assert entry.data["signed_seq"] == 0 and entry.data["signed_hash"] == store.batch(batch).header_hash
    assert manifestations(store, batch)[0].bound


def test_signature_cannot_be_moved_to_another_batch(store: RecordStore, users: UserStore) -> None:
    """11.70: a copy of a signature's content in another batch names a hash that is not in that batch."""
    first = run_batch(store, alarm=False)
    second = run_batch(store, alarm=False)
    original = sign(store, first, "quinn", PASSWORDS["quinn"], "approved", users=users)
    copy = store.append(second, "signature", original.data, actor="quinn")
    assert not check_signature(store.entries(second), copy)
    assert [m.bound for m in manifestations(store, second)] == [False]
    assert "NOT BOUND" in manifestations(store, second)[0].line()
    assert check_signature(store.entries(first), original)


def test_edited_signature_is_detected_by_verify(store: RecordStore, users: UserStore) -> None:
    """Changing the meaning of a signature after the fact breaks the chain (the signature is an ordinary entry)."""
    batch = run_batch(store, alarm=False)
    entry = sign(store, batch, "quinn", PASSWORDS["quinn"], "reviewed", users=users)
    tamper(store, "UPDATE entry SET data = REPLACE(data, 'reviewed', 'released') WHERE batch_id = :b AND seq = :s",
           {"b": batch, "s": entry.seq})
    result = store.verify(batch).result(batch)
    assert not result.ok and result.problem is not None and result.problem.seq == entry.seq


def test_refuses_to_sign_a_record_that_does_not_verify(store: RecordStore, users: UserStore) -> None:
    """Nobody signs content that is not what was recorded."""
    batch = run_batch(store, alarm=False)
    tamper(store, "UPDATE entry SET actor = 'mallory' WHERE batch_id = :b AND seq = 2", {"b": batch})
    with pytest.raises(SignatureRefused, match="does not verify"):
        sign(store, batch, "quinn", PASSWORDS["quinn"], "reviewed", users=users)
