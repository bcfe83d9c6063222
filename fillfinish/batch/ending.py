"""How a run ends: the outcome reported (with the disposition written if the batch ended without one), or the
record-failure stop in a safe state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from fillfinish.batch.disposition import Disposition, decide
from fillfinish.batch.history import BatchHistory
from fillfinish.record.entry_stream import iter_entries
from fillfinish.record.vocabulary import DispositionData
from fillfinish.batch.outcome import BatchOutcome
from fillfinish.batch.recorder import RecordFailure

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController

log = structlog.get_logger("fillfinish.batch")


async def record_failed(self: BatchController, exc: BaseException) -> BatchOutcome:
    """The record cannot be written: safe state (dispense terminated, lamp off), nothing more is attempted."""
    log.error("batch.record_failed", batch=self.batch_id, error=str(exc))
    await self.safe.lamp_off(f"record failed: {exc}")
    return BatchOutcome(self.batch_id or "", self.machine.state.name, None,
                        message=f"batch stopped in a safe state: {exc}")


async def finish(self: BatchController) -> BatchOutcome:
    """Write the disposition if the batch ended without one, and report."""
    assert self.batch_id is not None
    try:  # every queued entry committed before the record is read back
        await self.recorder.committed()
    except RecordFailure as exc:
        return await record_failed(self, self.fatal or exc)
    self.history = BatchHistory.from_entries(iter_entries(self.store, self.batch_id))
    state = self.machine.state.name
    if self.history.disposition is None and state in ("Stopped", "Aborted", "Complete"):
        disp = decide(self.history, self.planned, state)
        await self.recorder.awrite("disposition", "system", **disp.as_record())
        self.history.disposition = disp.as_record()
    written = self.history.disposition or decide(self.history, self.planned, state).as_record()
    d = DispositionData.model_validate(written)
    disp = Disposition(d.verdict, d.reasons, d.reconciliation)
    c, uv = self.history.counts, self.live.uv
    return BatchOutcome(
        self.batch_id or "", state, disp, c["accepted"], c["rejected"], c["uncertain"],
        uv["uv_cycle"].dose_mj_cm2 if "uv_cycle" in uv else self.history.uv_dose,
        uv["tip_uv"].dose_mj_cm2 if "tip_uv" in uv else 0.0,
        [a.message for _, a in self.history.alarms if a.severity != "alert"],
    )
