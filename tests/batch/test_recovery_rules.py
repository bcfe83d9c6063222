"""Crash recovery decided from the record alone, on hand-written records (no devices needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fillfinish.batch.history import BatchHistory
from fillfinish.batch.recovery import NothingToRecover, abort_without_devices, recover
from fillfinish.lock import RecordBusy, exclusive
from fillfinish.machine.phases import Phase, PhaseSequence
from fillfinish.record.store import RecordStore
from fillfinish.record.verify import verify


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = RecordStore(f"sqlite:///{tmp_path / 'r.db'}")
    yield s
    s.close()


def batch(store: RecordStore, *entries: tuple[str, dict[str, Any]]) -> str:
    bid = store.create_batch(product="P", product_code="PC", recipe_name="r", recipe_version="1", recipe_hash="0" * 64,
                             recipe_snapshot="# recipe", lot="L", planned_vials=3, operator="op", mode="production",
                             site_config={})
    for kind, data in entries:
        store.append(bid, kind, data, "system")
    return bid


def state(frm: str, to: str) -> tuple[str, dict[str, Any]]:
    return "state", {"from": frm, "to": to, "trigger": "x", "reason": ""}


def phase(name: str, event: str) -> tuple[str, dict[str, Any]]:
    return "phase", {"phase": name, "event": event}


FILLING = [state("Stopped", "Resetting"), state("Resetting", "Idle"), state("Idle", "Starting"),
           phase("line_checks", "start"), state("Starting", "Execute"), phase("line_checks", "done"),
           phase("uv_cycle", "start"), phase("uv_cycle", "done"), phase("tip_sterilisation", "start"),
           phase("tip_sterilisation", "done"), phase("prime", "start"), phase("prime", "done"), phase("fill", "start")]


def test_dispense_without_outcome_is_uncertain_and_batch_held(store: RecordStore) -> None:
    bid = batch(store, *FILLING, ("vial", {"vial": 1, "status": "accepted", "reason": "in tolerance"}),
                ("intent", {"action": "dispense", "vial": 2, "volume_ul": 100.0}))
    report = recover(store, bid, now=store.last_entry(bid).ts.timestamp() + 30)
    assert (report.uncertain_vial, report.state_after) == (2, "Held")
    h = BatchHistory.from_entries(store.entries(bid))
    assert h.state == "Held" and h.vials[2].status == "uncertain" and h.next_vial() == 3
    assert verify(store, bid).ok


def test_failed_dispense_outcome_before_the_judgement_is_uncertain_not_refilled(store: RecordStore) -> None:
    bid = batch(store, *FILLING, ("intent", {"action": "dispense", "vial": 1, "volume_ul": 100.0}))
    seq = store.last_entry(bid).seq
    store.append(bid, "outcome", {"action": "dispense", "intent": seq, "ok": False, "vial": 1}, "system")
    report = recover(store, bid, now=store.last_entry(bid).ts.timestamp())
    assert report.uncertain_vial == 1
    assert BatchHistory.from_entries(store.entries(bid)).next_vial() == 2


def test_crash_before_execute_ends_stopped_with_a_disposition(store: RecordStore) -> None:
    bid = batch(store, state("Stopped", "Resetting"), state("Resetting", "Idle"), state("Idle", "Starting"),
                phase("line_checks", "start"))
    report = recover(store, bid, now=store.last_entry(bid).ts.timestamp())
    assert report.state_after == "Stopped"
    h = BatchHistory.from_entries(store.entries(bid))
    assert h.state == "Stopped" and h.finished and not h.disposition["suitable"]
    with pytest.raises(NothingToRecover):
        recover(store, bid, now=0.0)


def test_crash_while_aborting_ends_aborted(store: RecordStore) -> None:
    bid = batch(store, *FILLING, state("Execute", "Aborting"))
    assert recover(store, bid, now=store.last_entry(bid).ts.timestamp()).state_after == "Aborted"


def test_a_repeated_phase_restores_after_a_crash(store: RecordStore) -> None:
    bid = batch(store, *FILLING[:-1], ("phase", {"phase": "uv_cycle", "event": "repeat", "reason": "8.18"}))
    h = BatchHistory.from_entries(store.entries(bid))
    assert h.phase == "uv_cycle" and h.phases_done == ["line_checks"] and h.uv_end is None
    seq = PhaseSequence()
    seq.restore(Phase(h.phase), [Phase(p) for p in h.phases_done])  # consistent: no ValueError
    assert seq.current == Phase.uv_cycle


@pytest.mark.parametrize("last", ["line_checks", "prime", "post_fill"])
def test_a_stop_right_after_a_phase_done_restores_into_that_phase(store: RecordStore, last: str) -> None:
    """CI found it: a batch stopped in Completing after "post_fill done" (and, alike, between any phase's "done" and
    the next one's "start") recovered to Held but could not be restored to abort or resume it."""
    upto = FILLING.index(phase(last, "done")) + 1 if last != "post_fill" else len(FILLING)
    tail = [phase("fill", "done"), phase("post_fill", "start"), state("Execute", "Completing"),
            phase("post_fill", "done")] if last == "post_fill" else []
    bid = batch(store, *FILLING[:upto], *tail)
    assert recover(store, bid, now=store.last_entry(bid).ts.timestamp()).state_after == "Held"
    h = BatchHistory.from_entries(store.entries(bid))
    assert h.phase == last and h.phases_done[-1] == last
    seq = PhaseSequence()
    seq.restore(Phase(h.phase), [Phase(p) for p in h.phases_done])  # consistent: no ValueError
    assert seq.current == Phase(last)


def test_abort_in_the_record_only(store: RecordStore) -> None:
    bid = batch(store, *FILLING, state("Execute", "Holding"), state("Holding", "Held"))
    abort_without_devices(store, bid, "sup.bob", "line unpowered", "PLC unreachable")
    h = BatchHistory.from_entries(store.entries(bid))
    assert h.state == "Aborted" and h.finished
    assert any("safe state not confirmed" in (getattr(d, "message", None) or "") for _, d in h.exceptions)


def test_one_process_per_record(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with exclusive(url, "first"):
        with pytest.raises(RecordBusy, match="first"):
            with exclusive(url, "second"):
                pass
    with exclusive(url, "third"):  # released when the first ended
        pass
