"""The batch's pen: every entry of one batch goes through here, committed before the caller's next step.

A failed write raises `RecordFailure`; the controller treats it as the most serious fault there is (the batch stops
in a safe state), never the other way round.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from fillfinish.record.entry_check import CheckedEntry, check_entry
from fillfinish.record.store import RecordStore, RecordWriteError

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
        """The ok outcome shares the very next entry's sync and is queued, not awaited: the caller writes that entry
        with no hardware action and no wait in between, and awaits an entry queued after both before its next
        hardware action, so the outcome is committed (and synced) before that action as before; a failed commit
        fails every later write (decision 0019 and its amendments)."""
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
    """Appends entries to one batch's chain; `intent`/`outcome` bracket every hardware action.

    The commits run on one writer thread, in the order they were asked for, so an fsync never blocks the event loop
    (issue 10.4, decision 0025): the controller awaits a write where the next step needs it committed (`awrite`,
    `action`), posts it where nothing waits on it (`post`: state changes, alarms, samples), and a failed posted write
    reaches `on_failure`, which stops the run in a safe state. `write` blocks until committed (tools and tests).
    """

    def __init__(self, store: RecordStore, batch_id: str,
                 on_failure: Callable[[RecordFailure], None] | None = None) -> None:
        self.store = store
        self.batch_id = batch_id
        self.count = 0
        self.failed: str | None = None
        self.on_failure = on_failure
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="record-writer")
        self._last: Future[Any] | None = None

    # ------------------------------------------------------------------------------------------ the three ways in
    def write(self, kind: str, actor: str = "system", /, *, durable_: bool = True, **data: Any) -> int:
        """Append one entry and return its sequence number once committed (blocks: not for the event loop)."""
        return int(self._submit(kind, actor, data, durable_).result())

    async def awrite(self, kind: str, actor: str = "system", /, *, durable_: bool = True, **data: Any) -> int:
        """Append one entry; the event loop runs on while the writer thread commits it. Returns its seq."""
        return int(await asyncio.wrap_future(self._submit(kind, actor, data, durable_)))

    def post(self, kind: str, actor: str = "system", /, *, durable_: bool = True, **data: Any) -> None:
        """Queue one entry (committed before any entry asked for later); a failure reaches `on_failure`."""
        self._report(self._submit(kind, actor, data, durable_))

    def post_call(self, job: Callable[[], Any]) -> None:
        """Run `job` on the writer thread after every entry queued so far (entries that need each other's seq)."""
        self._check_usable()
        try:
            self._last = self._writer.submit(self._guarded, job)
        except RuntimeError as exc:  # the writer was closed with the session
            raise RecordFailure("cannot write the batch record: the run's record is closed") from exc
        self._report(self._last)

    async def committed(self) -> None:
        """Wait until every entry queued so far is committed; RecordFailure if one was not."""
        if self._last is not None:
            try:
                await asyncio.shield(asyncio.wrap_future(self._last))
            except RecordFailure:
                pass
        if self.failed:
            raise RecordFailure(f"cannot write the batch record: {self.failed}")

    def close(self) -> None:
        """Let the queued entries finish and end the writer thread."""
        self._writer.shutdown(wait=True)

    def append_now(self, kind: str, actor: str, data: dict[str, Any], durable: bool = True) -> int:
        """Check and append one entry (on the writer thread): RecordFailure if it was not committed."""
        return self._append(self._check(kind, actor, data), durable)

    # ------------------------------------------------------------------------------------------------- plumbing
    def _submit(self, kind: str, actor: str, data: dict[str, Any], durable: bool) -> Future[Any]:
        """Check the entry here (a refusal raises at the caller, nothing queued), then queue its append behind every
        entry asked for before it; the store does not check it again."""
        checked = self._check(kind, actor, data)
        try:
            self._last = self._writer.submit(self._append, checked, durable)
        except RuntimeError as exc:  # the writer was closed with the session
            raise RecordFailure(f"cannot write the batch record: the run's record is closed ({kind!r})") from exc
        return self._last

    def _check(self, kind: str, actor: str, data: dict[str, Any]) -> CheckedEntry:
        """The entry checked against the record's rules and vocabulary; RecordFailure (nothing written, the record
        still sound) when it is refused."""
        self._check_usable()
        try:
            return check_entry(self.batch_id, kind, data, actor)
        except RecordWriteError as exc:
            log.error("record.vocabulary_refused", batch=self.batch_id, kind=kind, error=str(exc))
            raise RecordFailure(f"cannot write the batch record: {exc}") from exc

    def _append(self, checked: CheckedEntry, durable: bool) -> int:
        """The append itself (on the writer thread); a failed commit marks the record failed."""
        if self.failed:
            raise RecordFailure(f"record already failed: {self.failed}")
        try:
            entry = self.store.append_checked(self.batch_id, checked, durable=durable)
        except RecordWriteError as exc:
            self.failed = str(exc)
            log.error("record.write_failed", batch=self.batch_id, kind=checked.kind, error=str(exc))
            raise RecordFailure(f"cannot write the batch record: {exc}") from exc
        self.count += 1
        return entry.seq

    def _check_usable(self) -> None:
        """RecordFailure once a write has failed (nothing more is queued)."""
        if self.failed:
            raise RecordFailure(f"record already failed: {self.failed}")

    def _guarded(self, job: Callable[[], Any]) -> Any:
        """A writer-thread job whose unexpected error counts as a failed write."""
        try:
            return job()
        except RecordFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to write stops the batch
            self.failed = self.failed or f"{type(exc).__name__}: {exc}"
            raise RecordFailure(f"cannot write the batch record: {exc}") from exc

    def _report(self, future: Future[Any]) -> None:
        """Hand a posted write's failure to `on_failure` in the event loop that posted it."""
        if self.on_failure is None:
            return
        loop = asyncio.get_running_loop()
        hook = self.on_failure

        def done(f: Future[Any]) -> None:
            exc = f.exception()
            if isinstance(exc, RecordFailure):
                loop.call_soon_threadsafe(hook, exc)

        future.add_done_callback(done)

    async def intent(self, action: str, actor: str = "system", **data: Any) -> int:
        """Before a hardware action: what is about to be done (committed when this returns)."""
        return await self.awrite("intent", actor, action=action, **data)

    async def outcome(self, action: str, intent_seq: int, ok: bool, actor: str = "system", *, durable_: bool = True,
                      **data: Any) -> int:
        """After a hardware action: what happened, linked to its intent (committed when this returns)."""
        return await self.awrite("outcome", actor, action=action, intent=intent_seq, ok=ok, durable_=durable_, **data)

    @asynccontextmanager
    async def action(self, action: str, actor: str = "system", /, **intent: Any) -> AsyncIterator[Act]:
        """Bracket one hardware action: the intent is committed before the body runs (a failed write raises before
        any device is told), the outcome after it: ok with the body's `result` fields, ok=False with `failed`'s
        error, or ok=False naming the exception that left the body (the exception then goes on)."""
        act = Act(action, await self.intent(action, actor, **intent))
        try:
            yield act
        except Exception as exc:
            if act.error is None:
                act.failed(f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, RecordFailure) and not self.failed:
                await self.outcome(action, act.seq, False, actor, error=act.error, **act.fields)
            raise
        except BaseException:  # cancelled: the run is torn down; queue the outcome if the record still takes it
            if not self.failed:
                try:
                    self.post("outcome", actor, action=action, intent=act.seq, ok=False,
                              error=act.error or "cancelled", **act.fields)
                except RecordFailure:
                    pass
            raise
        if act.error is not None:
            await self.outcome(action, act.seq, False, actor, error=act.error, **act.fields)
        elif act.durable:
            await self.outcome(action, act.seq, True, actor, **act.fields)
        else:  # Act.synced_by_next: the caller's next entry, queued behind it, is awaited before any action
            self.post("outcome", actor, durable_=False, action=action, intent=act.seq, ok=True, **act.fields)
