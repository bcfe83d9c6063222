"""recorder.action: the intent is committed before the body runs, the outcome after it, a failure outcome when the
body raises; no body runs when its intent could not be written."""

from __future__ import annotations

from typing import Any

import pytest

from fillfinish.batch.recorder import BatchRecorder, RecordFailure
from fillfinish.record.store import RecordWriteError


def _last(rec: BatchRecorder) -> Any:
    return rec.store.entries(rec.batch_id)[-1]


async def test_intent_before_the_body_and_outcome_after(rec: BatchRecorder) -> None:
    async with rec.action("dispense", vial=3, volume_ul=100.0) as act:
        seen = _last(rec)
        assert seen.kind == "intent" and seen.data["action"] == "dispense" and seen.seq == act.seq
        act.result(vial=3, delivered_ul=100.0)
    out = _last(rec)
    assert out.kind == "outcome" and out.data == {"action": "dispense", "intent": act.seq, "ok": True, "vial": 3,
                                                  "delivered_ul": 100.0}


async def test_an_exception_writes_a_failed_outcome_and_goes_on(rec: BatchRecorder) -> None:
    with pytest.raises(TimeoutError):
        async with rec.action("position", vial=2):
            raise TimeoutError("positioner did not arrive")
    out = _last(rec)
    assert out.kind == "outcome" and out.data["ok"] is False
    assert out.data["error"] == "TimeoutError: positioner did not arrive"


async def test_failed_without_raising_is_an_unsuccessful_outcome(rec: BatchRecorder) -> None:
    async with rec.action("lamp_on") as act:
        act.failed("door open")
    assert _last(rec).data == {"action": "lamp_on", "intent": act.seq, "ok": False, "error": "door open"}


async def test_no_body_runs_without_its_intent(rec: BatchRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kw: Any) -> Any:
        raise RecordWriteError("disk gone")

    monkeypatch.setattr(rec.store, "append_checked", broken)
    ran = []
    with pytest.raises(RecordFailure):
        async with rec.action("dispense", vial=1, volume_ul=100.0):
            ran.append(True)
    assert ran == []
