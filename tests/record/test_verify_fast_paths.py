"""The fast paths of `record verify` (decision 0018) give the same findings as the full check, alone and in workers.

Each scenario tampers with a small record as an attacker with database access would; the report is then taken three
ways: as `verify` runs (fast paths on, one process), with every fast path switched off (the full check of every
row, as before decision 0018), and split over two worker processes. All three must print the same lines.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest

from fillfinish.record import RecordStore
from fillfinish.record import verify_batches, verify_ledger, verify_parallel
from fillfinish.record.chain import format_ts
from fillfinish.record.sitekey import entry_signature_message
from fillfinish.record.verify import verify
from fillfinish.record.verify_onepass import RangeScan
from record_helpers import fill, new_batch, tamper

verify_module = importlib.import_module("fillfinish.record.verify")  # the package's `verify` is the function


def signature(store: RecordStore, batch: str, *, valid: bool = True) -> None:
    """Append a signature entry of the batch's head, with a proof made under the site key (or a wrong one)."""
    head = store.last_entry(batch)
    assert head is not None
    key = store.site_key(create=True)
    assert key is not None
    signed_at = format_ts(store.record_time())
    proof = key.mac(entry_signature_message(batch_id=batch, signed_hash=head.hash, signed_seq=head.seq,
                                            user_id="qa.person", meaning="approval", signed_at=signed_at))
    store.append(batch, "signature", {
        "name": "QA Person", "user_id": "qa.person", "role": "qa", "meaning": "approval", "signed_hash": head.hash,
        "signed_seq": head.seq, "reason": "", "signed_at": signed_at, "key_id": key.fingerprint,
        "proof": proof if valid else "0" * 64}, actor="qa.person")


def build(store: RecordStore) -> tuple[str, str, str]:
    """Three batches (6, 3 and 4 entries, two signatures in the first) interleaved in the ledger."""
    a = new_batch(store)
    fill(store, a, 3)
    b = new_batch(store, lot="L-2")
    fill(store, b, 3)
    fill(store, a, 2, start=3)
    signature(store, a)
    c = new_batch(store, lot="L-3")
    fill(store, c, 4)
    return a, b, c


SCENARIOS: dict[str, Callable[[RecordStore, str, str, str], None]] = {
    "intact": lambda s, a, b, c: None,
    "data changed": lambda s, a, b, c: tamper(
        s, "UPDATE entry SET data = :d WHERE batch_id = :b AND seq = 2",
        params={"d": '{"accepted":true,"net_g":0.9,"vial":2}', "b": a}),
    "data not canonical": lambda s, a, b, c: tamper(
        s, "UPDATE entry SET data = :d WHERE batch_id = :b AND seq = 2",
        params={"d": '{"accepted": true, "net_g": 0.501, "vial": 2}', "b": b}),
    "ts changed": lambda s, a, b, c: tamper(
        s, "UPDATE entry SET ts = :t WHERE batch_id = :b AND seq = 1", params={"t": "2020-01-01T00:00:00.000000Z",
                                                                                "b": c}),
    "middle entry deleted": lambda s, a, b, c: tamper(
        s, "DELETE FROM entry WHERE batch_id = :b AND seq = 2", params={"b": a}),
    "last entry deleted": lambda s, a, b, c: tamper(
        s, "DELETE FROM entry WHERE batch_id = :b AND seq = 4", params={"b": c}),
    "header changed": lambda s, a, b, c: tamper(
        s, "UPDATE batch SET lot = 'L-X' WHERE batch_id = :b", params={"b": b}),
    "ledger MAC changed": lambda s, a, b, c: tamper(
        s, "UPDATE ledger SET mac = :m WHERE line_seq = 5", params={"m": "f" * 64}),
    "ledger row deleted": lambda s, a, b, c: tamper(s, "DELETE FROM ledger WHERE line_seq = 7"),
    "ledger link changed": lambda s, a, b, c: tamper(
        s, "UPDATE ledger SET prev_hash = :p WHERE line_seq = 9", params={"p": "0" * 64}),
    "ledger row without MAC": lambda s, a, b, c: tamper(
        s, "UPDATE ledger SET mac = NULL, key_id = NULL WHERE line_seq = 12"),
    "invalid signature": lambda s, a, b, c: signature(s, b, valid=False),
}


def reports(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The report lines as verify runs, with every fast path off, and over two worker processes."""
    fast = verify(store).lines()
    with monkeypatch.context() as patch:
        patch.setattr(verify_batches, "_fast_batch", lambda *args: None)
        patch.setattr(verify_ledger, "fast_row_ok", lambda *args: False)
        patch.setattr(verify_module, "scan_ledger", lambda *args: {})  # every line walked in line_seq order
        patch.setattr(verify_parallel, "scan_range", lambda *args: RangeScan())  # no one-pass spans: all walked again
        full = verify(store).lines()
    with monkeypatch.context() as patch:
        patch.setattr(verify_module, "PARALLEL_MIN_ROWS", 0)
        parallel = verify(store, jobs=2).lines()
    return [fast, full, parallel]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_fast_paths_find_what_the_full_check_finds(store: RecordStore, monkeypatch: pytest.MonkeyPatch,
                                                   scenario: str) -> None:
    """Same report lines three ways; the intact record is intact and every tampered one is not."""
    a, b, c = build(store)
    SCENARIOS[scenario](store, a, b, c)
    fast, full, parallel = reports(store, monkeypatch)
    assert fast == full, scenario
    assert parallel == full, scenario
    intact = not any("NOT INTACT" in line for line in fast)
    assert intact == (scenario == "intact"), fast


def test_hmac_pads_match_the_hmac_module() -> None:
    """The precomputed HMAC states give hmac.new's digest, for short and long (hashed first) secrets."""
    import hashlib
    import hmac

    for secret in (b"k" * 32, b"x" * 64, b"long" * 40, b""):
        pads: Any = verify_ledger._hmac_pads(secret)
        for message in ("ledger/1\x1fline-1\x1f1\x1fab\x1fcd", "ü\x00"):
            expected = hmac.new(secret, message.encode("utf-8"), hashlib.sha256).hexdigest()
            assert verify_ledger._hmac_hex(pads, message) == expected


def test_verify_does_not_import_the_store() -> None:
    """The import cycle stays broken: store.py imports verify, no verify module imports the store (issue 11.3)."""
    import ast
    from pathlib import Path

    import fillfinish.record.store as store_module

    folder = Path(store_module.__file__).parent
    for path in sorted(folder.glob("verify*.py")):
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert "fillfinish.record.store" not in imported, path.name
