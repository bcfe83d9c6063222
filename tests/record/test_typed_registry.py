"""Registry entries read back typed (fillfinish/record/typed_registry.py, decision 0023): the master-data, people and
quality folds get the vocabulary's models and a typed signer; an entry they cannot read is left out of the fold."""

from __future__ import annotations

from typing import Any

from record_helpers import tamper

from fillfinish.masterdata.materials import lots
from fillfinish.record.registry import append_registry
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_entries import Unreadable
from fillfinish.record.typed_registry import Signer, read_registry, registry_of_type, signer
from fillfinish.record.vocabulary_registries import MaterialApproved, MaterialReceived

SIG = {"name": "Rita Receiver", "user_id": "rita", "role": "operator", "meaning": "received", "reason": "",
       "authenticated": True}


def _receive(store: RecordStore, lot: str, signature: dict[str, Any] = SIG) -> None:
    """Receive one vial lot into REG-MATERIALS (written as fillfinish.masterdata.materials.receive does)."""
    append_registry(store, "materials", "material_received", {
        "lot": lot, "material": "vial", "supplier": "S", "supplier_lot": "S-1", "quantity": 100, "unit": "pcs",
        "expiry": "2030-01-01", "certificate": "CoA-1", "status": "quarantine", "signature": signature}, "rita")


def test_registry_entries_come_back_as_their_models_with_a_typed_signer(store: RecordStore) -> None:
    _receive(store, "V-1")
    append_registry(store, "materials", "material_approved", {
        "lot": "V-1", "reason": "", "old": {"status": "quarantine"}, "new": {"status": "approved"},
        "signature": dict(SIG, name="Quinn QA", user_id="quinn", role="qa", meaning="approved")}, "quinn")
    rows = read_registry(store, "materials")
    assert [type(r.data) for r in rows] == [MaterialReceived, MaterialApproved]
    received = registry_of_type(store, "materials", MaterialReceived)
    assert [(r.seq, r.data.lot, r.data.quantity) for r in received] == [(1, "V-1", 100)]
    assert signer(received[0].data.signature) == Signer(**SIG)
    lot = lots(store)["V-1"]
    assert (lot.status, lot.received_by, lot.decided_by, lot.decision_seq) == ("approved", "rita", "quinn", 2)
    assert read_registry(store, "never-written") == []


def test_an_entry_whose_signature_is_no_manifestation_is_unreadable_and_left_out(store: RecordStore) -> None:
    _receive(store, "V-1")
    _receive(store, "V-2", signature={"user_id": "rita"})  # the vocabulary takes any dict; the typed reader does not
    rows = read_registry(store, "materials")
    assert isinstance(rows[0].data, MaterialReceived)
    assert isinstance(rows[1].data, Unreadable) and "signature" in rows[1].data.problem
    assert [r.data.lot for r in registry_of_type(store, "materials", MaterialReceived)] == ["V-1"]
    assert sorted(lots(store)) == ["V-1"]


def test_a_tampered_registry_entry_is_left_out_of_the_fold_and_verify_fails(store: RecordStore) -> None:
    _receive(store, "V-1")
    _receive(store, "V-2")
    tamper(store, "UPDATE entry SET data = REPLACE(data, '\"supplier_lot\"', '\"lot_of_supplier\"') "
                  "WHERE batch_id = 'REG-MATERIALS' AND seq = 2")
    rows = read_registry(store, "materials")
    assert isinstance(rows[1].data, Unreadable) and "lot_of_supplier" in rows[1].data.problem
    assert sorted(lots(store)) == ["V-1"]
    assert not store.verify().ok
