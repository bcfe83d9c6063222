"""The batch service: start, resume, abort and recover the batches of one line, as the CLI, the demo and the tests
all do it; the controller (fillfinish/batch/controller.py) runs one batch, this decides whether and how it may run.

Every operation holds the line's record lock (fillfinish/lock.py) while it works, so one controller serves a line.
A new batch is refused while another batch of the line did not end (`UnfinishedBatch`): it must be recovered, then
resumed or aborted, by a person. Start runs the master-data start checks (fillfinish/masterdata/start_checks.py);
resume and abort need a supervisor once the record has accounts (fillfinish/batch/authority.py); recover makes the
line safe (fillfinish/batch/line_recovery.py) and then writes the recovery from the record alone
(fillfinish/batch/recovery.py). Refusals are UserError with one line saying what and why.
"""

from __future__ import annotations

import asyncio
import signal
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

from fillfinish.batch.authority import DECIDE_ROLES, START_ROLES, PasswordSource, authorise
from fillfinish.batch.controller import BatchController, BatchOutcome, ProgressFn, TipLot
from fillfinish.batch.recovery import RecoveryReport
from fillfinish.clock import Clock
from fillfinish.config import SiteConfig
from fillfinish.errors import UserError
from fillfinish.inputs import check_fit, recipe_from_record
from fillfinish.lock import exclusive
from fillfinish.recipes.loader import LoadedRecipe
from fillfinish.record.store import RecordStore

__all__ = ["BatchService", "BatchOutcome", "PendingBatch", "SessionOptions", "StartRequest", "TipLot",
           "UnfinishedBatch", "pending_batches"]

ENDED = ("Complete", "Aborted", "Stopped")
"""Outcomes after which the batch's material lots are reconciled and consumed."""


class UnfinishedBatch(UserError):
    """A batch of this line did not end (unclean shutdown?): no new batch starts until a person settles it."""


@dataclass(frozen=True)
class StartRequest:
    """One new batch as a person asks for it: the recipe, lot, vial count, operator (and how to get their password
    when the record has accounts), the material lots and the legacy tip-lot options."""

    recipe: LoadedRecipe
    lot: str
    vials: int
    operator: str
    password: PasswordSource | None = None
    materials: dict[str, str] = field(default_factory=dict)
    tip_lot: TipLot | None = None
    source: str = "recipe"  # how the person named the recipe (for the fit messages)
    what: str = "start a batch"  # the purpose of the login, as the access trail records it


@dataclass
class SessionOptions:
    """How the service opens a controller session: progress callback, OPC UA server port (None: no server, 0: any
    free port), wire log, where notices go (endpoint, record-only abort), and whether SIGTERM/SIGINT are handled."""

    progress: ProgressFn | None = None
    serve_port: int | None = None
    wire_log: Path | None = None
    notify: Callable[[str], None] | None = None
    handle_signals: bool = False


@dataclass(frozen=True)
class PendingBatch:
    """A batch that did not end, as `batch status` lists it."""

    batch_id: str
    state: str
    phase: str | None
    vials_judged: int


class BatchService:
    """Start, resume, abort and recover the batches of the line in `config`, recorded in `db_url`."""

    def __init__(self, config: SiteConfig, db_url: str | None = None, options: SessionOptions | None = None) -> None:
        self.config = config
        self.db_url = db_url or config.database.url
        self.options = options or SessionOptions()
        self.line_id = config.line.id
        self._batch_id: str | None = None

    # ------------------------------------------------------------------------------------------ one unfinished
    def unfinished(self) -> list[str]:
        """The batches of this line that did not end (no disposition in their record)."""
        from fillfinish.batch.recovery import unfinished_batches

        with RecordStore(self.db_url) as store:
            return unfinished_batches(store, self.line_id)

    def refuse_if_unfinished(self) -> None:
        """UnfinishedBatch naming the first batch of this line that did not end, with what to do about it."""
        pending = self.unfinished()
        if pending:
            raise UnfinishedBatch(f"batch {pending[0]} did not end (unclean shutdown?): run `fillfinish batch "
                                  "recover --config ...` then resume or abort it before starting a new batch")

    # ------------------------------------------------------------------------------------------------- start
    async def start(self, request: StartRequest) -> BatchOutcome:
        """Check the recipe fits, the person may start, no batch is unfinished and the master data allow it; then
        run the batch to its end (or to Held). After SIGTERM/SIGINT (when handled) raises ShutdownBySignal."""
        check_fit(request.recipe, self.config, request.source)
        refusal = request.recipe.recipe.fill.vials_refusal(request.vials)
        if refusal is not None:  # before a login or a device is touched
            raise UserError(f"--vials {refusal}")
        signed = authorise(self.db_url, request.operator, START_ROLES, request.what, request.password)
        shutdown = _signal_shutdown() if self.options.handle_signals else None
        with _installed(shutdown), exclusive(self.db_url, "fillfinish run", self.line_id):
            self.refuse_if_unfinished()
            decision = self._start_checks(request)
            self._batch_id = None
            try:
                outcome = await self._run_new(request, decision, signed, shutdown)
            except asyncio.CancelledError:
                raise self._signal_exit(shutdown, self._batch_id) from None
            return self._reconciled(outcome, decision)

    def _start_checks(self, request: StartRequest) -> Any:
        """The master-data checks before start; a refusal names everything missing."""
        from fillfinish.masterdata import MasterDataError
        from fillfinish.masterdata.start_checks import start_batch

        try:
            return start_batch(self.db_url, self.config, request.recipe, operator=request.operator,
                               vials=request.vials, lot=request.lot, materials=request.materials,
                               tip_lot=request.tip_lot)
        except MasterDataError as exc:
            raise UserError(f"may not start: {exc}") from None

    async def _run_new(self, request: StartRequest, decision: Any, signed: bool, shutdown: Any) -> BatchOutcome:
        """Open the session, use the line clearance, create and run the batch."""
        from fillfinish.masterdata.start_checks import use_clearance_for

        tip_lot = TipLot(*decision.tip_lot) if decision.tip_lot else None
        async with self._session(request.recipe, what="fillfinish run") as controller:
            if shutdown is not None:
                shutdown.controller = controller
            use_clearance_for(self.db_url, self.config, decision, request.lot, request.operator)
            try:
                return await controller.run_new(lot=request.lot, vials=request.vials, operator=request.operator,
                                                tip_lot=tip_lot, authenticated=signed, master_data=decision.record)
            finally:
                self._batch_id = _batch_of(controller)

    def _stopped_by_signal(self, batch_id: str | None, signum: int) -> Exception:
        """After SIGTERM/SIGINT: the batch to its resting state in the record (Held, or Stopped with a disposition
        before Execute), the signal recorded as the cause; the exception carries the exit code."""
        from fillfinish.batch.recovery import NothingToRecover, recover
        from fillfinish.shutdown import ShutdownBySignal

        name = signal.Signals(signum).name
        if batch_id is None:
            return ShutdownBySignal(signum, f"{name}: stopped before a batch was created; nothing sent to fill")
        clock = self._clock()
        with RecordStore(self.db_url, now=clock.now, create=False) as store:
            try:
                report = recover(store, batch_id, clock.now(), cause=f"{name} received: controller stopped")
            except NothingToRecover:
                return ShutdownBySignal(signum, f"{name}: batch {batch_id} had already ended")
            store.append(batch_id, "safe_state", {"action": "recovery", "cause": name}, "system")
        held = " (resume or abort it: fillfinish batch resume/abort)" if report.state_after == "Held" else ""
        return ShutdownBySignal(signum, f"{name}: line in its safe state; batch {batch_id} is "
                                f"{report.state_after}{held}")

    # ------------------------------------------------------------------------------------------ resume, abort
    async def resume(self, batch_id: str, operator: str, reason: str,
                     password: PasswordSource | None = None) -> BatchOutcome:
        """Resume a Held batch (a supervisor): Unhold re-checks every interlock and hold time first."""
        return self._reconciled(await self._decide("resume", batch_id, operator, reason, password))

    async def abort(self, batch_id: str, operator: str, reason: str,
                    password: PasswordSource | None = None) -> BatchOutcome:
        """Abort a Held batch (a supervisor): safe state, Aborted, disposition not suitable; in the record only,
        saying so, when the devices cannot be reached."""
        return self._reconciled(await self._decide("abort", batch_id, operator, reason, password))

    def _reconciled(self, outcome: BatchOutcome, decision: Any = None) -> BatchOutcome:
        """Reconcile the batch's material lots once it has ended (lots from the start decision, else its record)."""
        if outcome.state in ENDED:
            from fillfinish.masterdata.start_checks import finish_batch

            finish_batch(self.db_url, outcome.batch_id, decision, self.config)
        return outcome

    async def _decide(self, action: str, batch_id: str, operator: str, reason: str,
                      password: PasswordSource | None) -> BatchOutcome:
        """Authorise, lock, check the batch is Held, open a controller on its recipe snapshot and act."""
        from hal.plc.errors import PlcError
        from hal.transport.errors import LinkError

        authorise(self.db_url, operator, DECIDE_ROLES, f"{action} batch {batch_id}", password)
        # a resumed batch runs its fill again: SIGTERM/SIGINT must leave it safe and Held, as during `run`
        shutdown = _signal_shutdown() if self.options.handle_signals and action == "resume" else None
        with _installed(shutdown), exclusive(self.db_url, f"fillfinish batch {action}", self.line_id):
            loaded = self._held_recipe(batch_id, action)
            if action == "resume":
                check_fit(loaded, self.config, f"record:{batch_id}")
            try:
                async with self._session(loaded, what=f"fillfinish batch {action}",
                                         serve=action == "resume") as controller:
                    if shutdown is not None:
                        shutdown.controller = controller
                    if action == "resume":
                        return await controller.resume(batch_id, operator, reason)
                    return await controller.abort_held(batch_id, operator, reason)
            except asyncio.CancelledError:
                raise self._signal_exit(shutdown, batch_id) from None
            except (PlcError, LinkError, OSError) as exc:
                if action != "abort":
                    raise
                return self._abort_in_record(batch_id, operator, reason, exc)

    def _signal_exit(self, shutdown: Any, batch_id: str | None) -> BaseException:
        """The run was cancelled: by our signal handler (the batch to its resting state, the exit code 128+N), or
        by someone else (the cancellation goes on)."""
        if shutdown is None or shutdown.signum is None:
            return asyncio.CancelledError()
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return self._stopped_by_signal(batch_id, shutdown.signum)

    def _held_recipe(self, batch_id: str, action: str) -> LoadedRecipe:
        """The Held batch's recipe snapshot (hash-checked); UserError when the batch is not Held (nothing sent)."""
        from fillfinish.batch.recovery import not_held_reason

        with RecordStore(self.db_url, create=False) as store:
            header = store.batch(batch_id)
            problem = not_held_reason(store, batch_id, action)
        if problem:
            raise UserError(problem)
        return recipe_from_record(header.recipe_snapshot, batch_id, header.recipe_hash)

    def _abort_in_record(self, batch_id: str, operator: str, reason: str, exc: BaseException) -> BatchOutcome:
        """Abort in the record only when the line cannot be reached; the outcome says the safe state is unconfirmed."""
        from fillfinish.batch.recovery import abort_without_devices

        self._notify(f"devices unreachable ({exc}); aborting in the record only")
        clock = self._clock()
        with RecordStore(self.db_url, now=clock.now, create=False) as store:
            abort_without_devices(store, batch_id, operator, reason, str(exc))
        return BatchOutcome(batch_id, "Aborted", None, message="aborted in the record only: the safe state of the "
                            "line is not confirmed; check it by hand")

    # ------------------------------------------------------------------------------------------------ recover
    async def recover(self, batch_id: str | None = None) -> list[RecoveryReport]:
        """After an unclean shutdown: make the line safe, record the gap and the uncertain vial, bring the batch
        (default: every unfinished batch of the line) to its resting state. Nothing is sent to the line when a
        batch is unknown or ended, or while a live controller holds the line."""
        from fillfinish.batch.line_recovery import make_line_safe
        from fillfinish.batch.recovery import check_recoverable, recover, unfinished_batches

        clock = self._clock()
        with exclusive(self.db_url, "fillfinish batch recover", self.line_id), \
                RecordStore(self.db_url, now=clock.now, create=False) as store:
            targets = [batch_id] if batch_id else unfinished_batches(store, self.line_id)
            if not targets:
                raise UserError("no unfinished batch to recover")
            for b in targets:
                store.batch(b)  # an unknown batch is a clear error before anything is touched
                check_recoverable(store, b)  # an ended batch: nothing to recover, nothing sent to the line
            safe = await make_line_safe(self.config, store, targets[0])
            reports = []
            for b in targets:
                report = recover(store, b, clock.now())
                if not report.already:
                    store.append(b, "safe_state", {"action": "recovery", **safe}, "system")
                reports.append(report)
            return reports

    # ------------------------------------------------------------------------------------------------ helpers
    @asynccontextmanager
    async def _session(self, recipe: LoadedRecipe, *, what: str, serve: bool = True) -> AsyncIterator[BatchController]:
        """A controller session on this line and record with the service's options; announces its endpoint."""
        from fillfinish.session import controller_session

        o = self.options
        async with controller_session(self.config, recipe, database_url=self.db_url, progress=o.progress,
                                      wire_log_path=o.wire_log, serve_port=o.serve_port if serve else None,
                                      what=what) as controller:
            endpoint = getattr(controller, "endpoint", None)
            if endpoint:
                self._notify(f"controller OPC UA endpoint: {endpoint}  (fillfinish hmi --endpoint {endpoint}; "
                             "log in as a user of the record)")
            yield controller

    def _clock(self) -> Clock:
        """The site's clock (the record's time for entries written outside a controller session)."""
        return Clock(self.config.clock.speed, self.config.clock.epoch, self.config.clock.timeline)

    def _notify(self, text: str) -> None:
        """A notice for the person (the CLI prints it on stderr)."""
        if self.options.notify is not None:
            self.options.notify(text)


def pending_batches(db_url: str) -> list[PendingBatch]:
    """Every batch in the record (any line) that did not end, with its state, phase and vials judged; read-only."""
    from fillfinish.batch.history import BatchHistory
    from fillfinish.batch.recovery import unfinished_batches

    with RecordStore(db_url, create=False, read_only=True) as store:
        out = []
        for b in unfinished_batches(store):
            h = BatchHistory.from_entries(store.entries(b))
            out.append(PendingBatch(b, h.state, h.phase, len(h.vials)))
        return out


def _batch_of(controller: BatchController) -> str | None:
    """The batch a controller created (None before the header was written)."""
    try:
        return controller.status().batch_id
    except Exception:  # noqa: BLE001 - a controller that cannot report has no batch to name
        return getattr(controller, "batch_id", None)


def _signal_shutdown() -> Any:
    """A SignalShutdown (fillfinish/shutdown.py) for the running loop."""
    from fillfinish.shutdown import SignalShutdown

    return SignalShutdown()


@contextmanager
def _installed(shutdown: Any) -> Iterator[None]:
    """Install `shutdown`'s signal handlers for the duration (nothing when it is None)."""
    if shutdown is None:
        yield
        return
    with shutdown.installed():
        yield
