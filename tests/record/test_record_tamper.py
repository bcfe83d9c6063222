"""Tamper detection (21 CFR 11.10(a)): with the triggers dropped and rows edited directly, verify names the first bad entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from fillfinish.record import RecordStore, UnknownBatchError
from fillfinish.record.chain import GENESIS_LEDGER_HASH, canonical_json, entry_hash, header_hash, line_ledger_hash
from fillfinish.record.verify import VerifyReport
from record_helpers import fill, new_batch, tamper


@pytest.fixture
def two_batches(store: RecordStore) -> tuple[str, str]:
    """Batch A with 6 vial entries, then batch B with 3 (so B's rows come after A's in the ledger)."""
    a = new_batch(store)
    fill(store, a, 6)
    b = new_batch(store, lot="L-2")
    fill(store, b, 3)
    assert store.verify().ok
    return a, b


def first_problem(report: VerifyReport, batch: str) -> tuple[int, str]:
    """(seq, kind) of the first problem of `batch`; fails if it verified."""
    result = report.result(batch)
    assert not result.ok and result.problem is not None, report.lines()
    return result.problem.seq, result.problem.kind


def row(store: RecordStore, batch: str, seq: int) -> dict[str, object]:
    """One raw entry row."""
    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT * FROM entry WHERE batch_id = :b AND seq = :s"), {"b": batch, "s": seq})
        return dict(found.mappings().one())


def test_intact_record_verifies(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """An untouched record is intact, with the entry counts and a ledger head."""
    a, b = two_batches
    report = store.verify()
    assert report.ok
    assert [(r.batch_id, r.entries_checked) for r in report.batches] == [(a, 6), (b, 3)]
    assert report.ledger.head is not None and report.ledger.head[0] == 11
    assert store.verify(a).batches == [report.result(a)]
    with pytest.raises(UnknownBatchError):
        store.verify("B-19990101-0001")


def test_changed_data_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Editing an entry's data in place: 'changed' at that seq; the other batch stays intact."""
    a, b = two_batches
    tamper(store, "UPDATE entry SET data = :d WHERE batch_id = :b AND seq = 3",
           params={"d": '{"accepted":true,"net_g":0.9,"vial":3}', "b": a})
    report = store.verify()
    assert first_problem(report, a) == (3, "changed")
    assert report.result(a).problem.entry_kind == "vial"  # type: ignore[union-attr]
    assert report.result(b).ok and not report.ok


def test_changed_timestamp_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Moving an entry's time: 'changed'."""
    a, _ = two_batches
    tamper(store, "UPDATE entry SET ts = '2026-11-25T09:00:00.000000Z' WHERE batch_id = :b AND seq = 2",
           params={"b": a})
    assert first_problem(store.verify(a), a) == (2, "changed")


def test_unreadable_data_is_changed(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Garbage in the data column is 'changed', not a crash."""
    a, _ = two_batches
    tamper(store, "UPDATE entry SET data = '{not json' WHERE batch_id = :b AND seq = 5", params={"b": a})
    assert first_problem(store.verify(a), a) == (5, "changed")


def test_changed_and_rehashed_entry_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """An attacker who recomputes the edited entry's hash is still caught (the ledger holds the original)."""
    a, _ = two_batches
    old = row(store, a, 4)
    data = {"accepted": True, "net_g": 0.499, "vial": 4}
    new_hash = entry_hash(str(old["prev_hash"]), batch_id=a, seq=4, ts=str(old["ts"]), kind="vial",
                          actor="controller", data=data)
    tamper(store, "UPDATE entry SET data = :d, hash = :h WHERE batch_id = :b AND seq = 4",
           params={"d": canonical_json(data), "h": new_hash, "b": a})
    assert first_problem(store.verify(a), a) == (4, "changed")


def test_entry_inserted_at_the_end_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """A fabricated, correctly hashed entry 7 without a ledger row: 'inserted'."""
    a, _ = two_batches
    last = row(store, a, 6)
    ts = "2026-11-25T10:00:00.000000Z"
    h = entry_hash(str(last["hash"]), batch_id=a, seq=7, ts=ts, kind="vial", actor="controller", data={"vial": 7})
    tamper(store, "INSERT INTO entry (batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash) "
                  "VALUES (:b, 7, 999, :ts, 'vial', 'controller', :d, :p, :h)",
           params={"b": a, "ts": ts, "d": '{"vial":7}', "p": last["hash"], "h": h})
    assert first_problem(store.verify(a), a) == (7, "inserted")


def test_entry_inserted_in_the_middle_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Shifting entries 3.. up and slipping a well-hashed entry in at 3: 'inserted' at 3."""
    a, _ = two_batches
    before = row(store, a, 2)
    ts = "2026-11-25T09:30:01.000000Z"
    h = entry_hash(str(before["hash"]), batch_id=a, seq=3, ts=ts, kind="operator", actor="mallory", data={})
    tamper(store,
           "UPDATE entry SET seq = seq + 1000 WHERE batch_id = :b AND seq >= 3",
           "UPDATE entry SET seq = seq - 999 WHERE batch_id = :b AND seq >= 1000",
           "INSERT INTO entry (batch_id, seq, global_seq, ts, kind, actor, data, prev_hash, hash) "
           "VALUES (:b, 3, 999, :ts, 'operator', 'mallory', '{}', :p, :h)",
           params={"b": a, "ts": ts, "p": before["hash"], "h": h})
    assert first_problem(store.verify(a), a) == (3, "inserted")


def test_middle_entry_deleted_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Deleting entry 3: 'removed' at 3 (gap in seq)."""
    a, _ = two_batches
    tamper(store, "DELETE FROM entry WHERE batch_id = :b AND seq = 3", params={"b": a})
    report = store.verify(a)
    assert first_problem(report, a) == (3, "removed")
    assert "3 are missing" in report.result(a).problem.detail  # type: ignore[union-attr]


def test_middle_entry_deleted_and_renumbered_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Deleting entry 3 and renumbering 4.. down to close the gap: still 'removed' at 3 (chain break)."""
    a, _ = two_batches
    tamper(store, "DELETE FROM entry WHERE batch_id = :b AND seq = 3",
           "UPDATE entry SET seq = seq - 1 WHERE batch_id = :b AND seq > 3", params={"b": a})
    assert first_problem(store.verify(a), a) == (3, "removed")


def test_last_entries_deleted_are_detected_by_the_ledger(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Deleting A's last two entries (the ledger still lists them): 'removed' at 5."""
    a, b = two_batches
    tamper(store, "DELETE FROM entry WHERE batch_id = :b AND seq >= 5", params={"b": a})
    report = store.verify()
    assert first_problem(report, a) == (5, "removed")
    assert report.result(b).ok and report.ledger.ok


def test_last_entries_and_their_ledger_rows_deleted(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Deleting A's last entries AND their ledger rows leaves a gap in the global ledger (B wrote after them)."""
    a, _ = two_batches
    tamper(store, "DELETE FROM entry WHERE batch_id = :b AND seq >= 5",
           "DELETE FROM ledger WHERE batch_id = :b AND seq >= 5", params={"b": a})
    report = store.verify(a)
    assert report.result(a).ok  # A alone looks complete ...
    assert not report.ok  # ... but the record is not
    assert report.ledger.problem is not None and report.ledger.problem.kind == "removed"
    assert report.ledger.problem.seq == 6  # A's entries 5 and 6 were global rows 6 and 7


def _without_key(store: RecordStore, tmp_path: Path) -> RecordStore:
    """The same database opened by someone who does not have the site key (the key file named is missing)."""
    return RecordStore(store._raw_url, key=tmp_path / "not-the-site.sitekey", create=False)  # noqa: SLF001


def test_globally_last_entries_are_caught_by_the_witness(store: RecordStore, two_batches: tuple[str, str],
                                                         tmp_path: Path) -> None:
    """Cutting the newest entry and its ledger row of the whole database: the keyed witness beside the site key still
    names that row, so verify reports it without a hand-kept anchor; without the key verify says it could not check,
    and an anchor noted earlier still catches it (decision 0012)."""
    _, b = two_batches
    anchor = store.verify().ledger.head
    assert anchor is not None
    tamper(store, "DELETE FROM entry WHERE batch_id = :b AND seq = 3",
           "DELETE FROM ledger WHERE batch_id = :b AND seq = 3", params={"b": b})
    report = store.verify()
    assert not report.ok and report.ledger.problem is not None
    assert (report.ledger.problem.seq, report.ledger.problem.kind) == (anchor[0], "removed")
    assert "witness" in report.ledger.problem.detail
    blind = _without_key(store, tmp_path)
    try:
        unkeyed = blind.verify()
        assert unkeyed.ok and not unkeyed.key_checked  # a clean cut leaves no trace inside the database ...
        assert any("no site key" in line for line in unkeyed.ledger.unchecked)  # ... and verify says so
        assert any(line.startswith("NOT CHECKED: ") for line in unkeyed.lines())
        against = blind.verify(anchor=anchor)
        assert not against.ok and against.ledger.problem is not None
        assert (against.ledger.problem.seq, against.ledger.problem.kind) == (anchor[0], "removed")
    finally:
        blind.close()


def _rewrite(store: RecordStore, batch: str) -> None:
    """An attacker with database access but no key rewrites entry 2 of `batch` and recomputes every later entry and
    ledger hash (keeping the old MACs: new ones need the key)."""
    with store.engine.connect() as conn:
        headers = {r.batch_id: r.header_hash for r in conn.execute(text("SELECT * FROM batch"))}
        entries = [dict(r) for r in conn.execute(text("SELECT * FROM entry ORDER BY batch_id, seq")).mappings()]
        ledger = [dict(r) for r in conn.execute(text("SELECT * FROM ledger ORDER BY line_id, line_seq")).mappings()]
    prev: dict[str, str] = dict(headers)
    statements: list[tuple[str, dict[str, object]]] = []
    new_hash = {}
    for e in entries:
        data = json.loads(e["data"])
        if e["batch_id"] == batch and e["seq"] == 2:
            data["status"] = "rejected"
        h = entry_hash(prev[e["batch_id"]], batch_id=e["batch_id"], seq=e["seq"], ts=e["ts"], kind=e["kind"],
                       actor=e["actor"], data=data)
        new_hash[(e["batch_id"], e["seq"])] = h
        statements.append(("UPDATE entry SET data = :d, prev_hash = :p, hash = :h WHERE id = :id",
                           {"d": canonical_json(data), "p": prev[e["batch_id"]], "h": h, "id": e["id"]}))
        prev[e["batch_id"]] = h
    lprev = GENESIS_LEDGER_HASH
    for r in ledger:
        record = headers[r["batch_id"]] if r["seq"] == 0 else new_hash[(r["batch_id"], r["seq"])]
        lh = line_ledger_hash(lprev, line_id=r["line_id"], line_seq=r["line_seq"], batch_id=r["batch_id"],
                              seq=r["seq"], record_hash=record)
        statements.append(("UPDATE ledger SET record_hash = :r, prev_hash = :p, hash = :h WHERE global_seq = :g",
                           {"r": record, "p": lprev, "h": lh, "g": r["global_seq"]}))
        lprev = lh
    tamper(store, *statements)


def test_full_rewrite_without_the_key_is_caught(store: RecordStore, two_batches: tuple[str, str],
                                                tmp_path: Path) -> None:
    """A rewrite of entry 2 with every later hash and the ledger recomputed passes the unkeyed checks, but its MACs
    do not match under the site key: verify with the key reports it without an anchor (decision 0012)."""
    a, b = two_batches
    anchor = store.verify().ledger.head
    assert anchor is not None
    _rewrite(store, a)
    assert store.entries(a)[1].data["status"] == "rejected"
    report = store.verify()
    assert not report.ok and report.ledger.problem is not None
    assert report.ledger.problem.kind == "changed" and "MAC" in report.ledger.problem.detail
    blind = _without_key(store, tmp_path)
    try:
        assert blind.verify().ok  # consistent hashes: invisible without the key ...
        assert not blind.verify(anchor=anchor).ok  # ... or against an anchor
        assert blind.verify(b, anchor=anchor).ok is False
    finally:
        blind.close()


def test_swapped_entries_are_reordered(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Swapping the seq of entries 3 and 4: 'reordered' at 3."""
    a, _ = two_batches
    tamper(store,
           "UPDATE entry SET seq = -3 WHERE batch_id = :b AND seq = 3",
           "UPDATE entry SET seq = 3 WHERE batch_id = :b AND seq = 4",
           "UPDATE entry SET seq = 4 WHERE batch_id = :b AND seq = -3", params={"b": a})
    assert first_problem(store.verify(a), a) == (3, "reordered")


def test_changed_header_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Editing the lot in the header: 'header changed' at seq 0."""
    a, b = two_batches
    tamper(store, "UPDATE batch SET lot = 'L-OTHER' WHERE batch_id = :b", params={"b": a})
    report = store.verify()
    assert first_problem(report, a) == (0, "header changed")
    assert report.result(b).ok


def test_changed_and_rehashed_header_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Editing planned_vials and recomputing header_hash: still 'header changed' (ledger and entry 1 disagree)."""
    a, _ = two_batches
    h = store.batch(a)
    fields = {n: getattr(h, n) for n in ("product", "product_code", "recipe_name", "recipe_version", "recipe_hash",
                                         "recipe_snapshot", "lot", "operator", "mode", "site_config")}
    with store.engine.connect() as conn:
        created = conn.execute(text("SELECT created_at FROM batch WHERE batch_id = :b"), {"b": a}).scalar_one()
    new = header_hash({**fields, "batch_id": a, "created_at": created, "planned_vials": 999})
    tamper(store, "UPDATE batch SET planned_vials = 999, header_hash = :h WHERE batch_id = :b",
           params={"h": new, "b": a})
    assert first_problem(store.verify(a), a) == (0, "header changed")


def test_deleted_batch_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Deleting a whole batch (entries and header): the ledger still names it, so 'removed' at seq 0."""
    a, _ = two_batches
    tamper(store, "DELETE FROM entry WHERE batch_id = :b", "DELETE FROM batch WHERE batch_id = :b", params={"b": a})
    report = store.verify()
    assert first_problem(report, a) == (0, "removed")
    assert first_problem(store.verify(a), a) == (0, "removed")


def test_changed_ledger_row_is_detected(store: RecordStore, two_batches: tuple[str, str]) -> None:
    """Editing a ledger row: the ledger check reports 'changed' at its global_seq."""
    tamper(store, "UPDATE ledger SET seq = 42 WHERE global_seq = 4")
    report = store.verify()
    assert not report.ok and report.ledger.problem is not None
    assert (report.ledger.problem.seq, report.ledger.problem.kind) == (4, "changed")
