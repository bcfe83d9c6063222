"""The batch's pen: every entry of one batch goes through here, committed before the caller's next step.

A failed write raises `RecordFailure`; the controller treats it as the most serious fault there is (the batch stops
in a safe state), never the other way round.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from fillfinish.record.store import RecordStore, RecordWriteError
from fillfinish.record.vocabulary import VocabularyError

log = structlog.get_logger("fillfinish.record")


class RecordFailure(RuntimeError):
    """The record could not be written: stop the batch in a safe state."""


@dataclass
class Act:
    """One hardware action in progress: its intent's seq and the outcome fields the body adds."""

    action: str
    seq: int
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    durable: bool = True  # False: an ok outcome shares the durable commit of the caller's very next entry

    def synced_by_next(self) -> None:
        """The ok outcome is committed but synced with the very next entry, which the caller writes with no hardware
        action and no wait in between (decision 0019: two entries with no action between them may share a sync)."""
        self.durable = False

    def result(self, **fields: Any) -> None:
        """Fields of the outcome (delivered_ul, lamp_on, ...)."""
        self.fields.update(fields)

    def failed(self, error: str, **fields: Any) -> None:
        """The action did not complete as intended: the outcome is written ok=False with `error` and `fields`
        (whether the body then raises or carries on)."""
        self.error = error
        self.fields.update(fields)


class BatchRecorder:
    """Appends entries to one batch's chain; `intent`/`outcome` bracket every hardware action."""

    def __init__(self, store: RecordStore, batch_id: str) -> None:
        self.store = store
        self.batch_id = batch_id
        self.count = 0
        self.failed: str | None = None

    def write(self, kind: str, actor: str = "system", /, *, durable_: bool = True, **data: Any) -> int:
        """Append one entry and return its sequence number; RecordFailure if it was not committed. `durable_=False`:
        committed, synced by the next durable entry (only when that one follows with no hardware action between)."""
        if self.failed:
            raise RecordFailure(f"record already failed: {self.failed}")
        try:  # validates against the record's vocabulary
            entry = (self.store.append(self.batch_id, kind, data, actor) if durable_ else
                     self.store.append(self.batch_id, kind, data, actor, durable=False))
        except RecordWriteError as exc:
            if isinstance(exc.__cause__, VocabularyError):  # nothing written and the store is sound: later entries go in
                log.error("record.vocabulary_refused", batch=self.batch_id, kind=kind, error=str(exc))
                raise RecordFailure(f"cannot write the batch record: {exc}") from exc
            self.failed = str(exc)
            log.error("record.write_failed", batch=self.batch_id, kind=kind, error=str(exc))
            raise RecordFailure(f"cannot write the batch record: {exc}") from exc
        self.count += 1
        return entry.seq

    def intent(self, action: str, actor: str = "system", **data: Any) -> int:
        """Before a hardware action: what is about to be done."""
        return self.write("intent", actor, action=action, **data)

    def outcome(self, action: str, intent_seq: int, ok: bool, actor: str = "system", *, durable_: bool = True,
                **data: Any) -> int:
        """After a hardware action: what happened, linked to its intent."""
        return self.write("outcome", actor, action=action, intent=intent_seq, ok=ok, durable_=durable_, **data)

    @asynccontextmanager
    async def action(self, action: str, actor: str = "system", /, **intent: Any) -> AsyncIterator[Act]:
        """Bracket one hardware action: the intent is committed before the body runs (a failed write raises before
        any device is told), the outcome after it: ok with the body's `result` fields, ok=False with `failed`'s
        error, or ok=False naming the exception that left the body (the exception then goes on)."""
        act = Act(action, self.intent(action, actor, **intent))
        try:
            yield act
        except Exception as exc:
            if act.error is None:
                act.failed(f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, RecordFailure) and not self.failed:
                self.outcome(action, act.seq, False, actor, error=act.error, **act.fields)
            raise
        except BaseException:  # cancelled: the run is torn down; say so if the record still takes it
            if not self.failed:
                try:
                    self.outcome(action, act.seq, False, actor, error=act.error or "cancelled", **act.fields)
                except RecordFailure:
                    pass
            raise
        if act.error is not None:
            self.outcome(action, act.seq, False, actor, error=act.error, **act.fields)
        else:
            self.outcome(action, act.seq, True, actor, durable_=act.durable, **act.fields)
