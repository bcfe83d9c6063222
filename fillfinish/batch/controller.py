"""The batch controller: the thin coordinator of one batch through the PackML machine and the phase sequence.

Its sequence is a table: phase -> step object (fillfinish/batch/steps/), advanced by the phase machine's own table
(fillfinish/machine/phases.py). Every hardware action runs inside `recorder.action(...)` (intent committed before,
outcome after); the safe state (terminate, lamp off, positioner stop) is fillfinish/batch/safe_state.py; the
monitor's callbacks are fillfinish/batch/alarms.py; the acting states around Execute fillfinish/batch/acting.py.
Interlocks arrive in the event loop: the dangerous part is done at once, then Hold is requested; the run loop stops
at the next safe point and waits for a person. A record write failure stops everything in a safe state.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from fillfinish.batch import acting
from fillfinish.batch.alarms import AlarmHandling
from fillfinish.batch.ending import finish, record_failed
from fillfinish.batch.faults import BatchEnded, CompleteRequested, DeviceFault
from fillfinish.batch.history import BatchHistory
from fillfinish.batch.monitoring import resume_checks, start_monitoring, stop_monitoring
from fillfinish.batch.outcome import BatchOutcome, ProgressFn, TipLot
from fillfinish.batch.recorder import BatchRecorder, RecordFailure
from fillfinish.batch.run_state import RunState
from fillfinish.batch.safe_state import SafeState
from fillfinish.batch.status import status_view
from fillfinish.batch.steps import STEPS, Step
from fillfinish.batch.uv_cycle import UvCycleFault, UvCycleInterrupted, latest
from fillfinish.clock import Clock
from fillfinish.config import SiteConfig
from fillfinish.control import AlarmView, StatusView
from fillfinish.line import Line
from fillfinish.lock import note_batch
from fillfinish.machine.packml import Command, CommandRefused, PackMLMachine, State, Transition, parse_command
from fillfinish.machine.phases import Facts, Phase, PhaseChange, PhaseSequence, Reason, SequenceRefused
from fillfinish.monitor import EnvironmentMonitor
from fillfinish.phase_watch import PhaseWatch
from fillfinish.recipes.loader import LoadedRecipe
from fillfinish.record.entry_stream import iter_entries
from fillfinish.record.store import RecordStore
from hal.balance.base import Balance
from hal.balance.errors import BalanceError
from hal.dispenser.base import Dispenser
from hal.dispenser.errors import PumpError
from hal.plc.base import Plc
from hal.plc.errors import PlcError

__all__ = ["BatchController", "BatchEnded", "BatchOutcome", "CompleteRequested", "DeviceFault", "ProgressFn", "TipLot"]

log = structlog.get_logger("fillfinish.batch")

REPEAT_FOR: dict[Reason, tuple[Phase, frozenset[Phase]]] = {
    Reason.uv_hold_time_expired: (Phase.uv_cycle, frozenset({Phase.prime, Phase.tip_sterilisation})),
    Reason.uv_hold_time_unknown: (Phase.uv_cycle, frozenset({Phase.prime, Phase.tip_sterilisation})),
    Reason.tips_hold_time_expired: (Phase.tip_sterilisation, frozenset({Phase.prime})),
    Reason.tips_hold_time_unknown: (Phase.tip_sterilisation, frozenset({Phase.prime})),
}
"""A hold time that ran out (Annex 1 8.18) -> the step it protects, repeated when refused from these phases."""


class BatchController:
    """Runs (or resumes) one batch on a Line, recording to a RecordStore, on a shared Clock."""

    def __init__(self, *, line: Line, store: RecordStore, clock: Clock, recipe: LoadedRecipe, site: SiteConfig,
                 progress: ProgressFn | None = None) -> None:
        self.line, self.store, self.clock, self.site = line, store, clock, site
        self.loaded, self.r = recipe, recipe.recipe
        self.progress = progress or (lambda what, done, total: None)
        self.rec: BatchRecorder | None = None
        self.machine = PackMLMachine(on_transition=self._on_transition)
        self.phases = PhaseSequence(on_change=self._on_phase)
        self.steps: dict[Phase, Step] = STEPS
        self.monitor: EnvironmentMonitor | None = None
        self.watch: PhaseWatch | None = None  # PLC state that contradicts the phase (fillfinish/phase_watch.py)
        self.live = RunState()
        self.safe = SafeState(pump=lambda: self.line.pump, plc=line.plc, live=self.live, recorder=lambda: self.rec,
                              on_record_failure=self.fail, move=self.move)
        self.alarm_handling = AlarmHandling(self)
        self.history = BatchHistory()
        self.batch_id: str | None = None
        self.planned, self.operator = 0, ""
        self.run_task: asyncio.Task[Any] | None = None  # the batch's run, ended by its session before the devices close
        self.alarms: list[AlarmView] = []
        self.stop_reason = ""
        self.wake = asyncio.Event()
        self.fatal: BaseException | None = None
        self.tip_lot: TipLot | None = None
        self.master_data: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------ devices, typed by role
    @property
    def pump(self) -> Dispenser:
        """The dispenser, by its domain verbs only."""
        return self.line.pump

    @property
    def balance(self) -> Balance:
        """The check-weigh balance."""
        return self.line.balance

    @property
    def plc(self) -> Plc:
        """The machine's PLC."""
        return self.line.plc

    @property
    def recorder(self) -> BatchRecorder:
        """This run's pen (there is one once the batch exists)."""
        assert self.rec is not None, "no batch record yet"
        return self.rec

    # ------------------------------------------------------------------------------------------------ the record
    def _on_transition(self, t: Transition) -> None:
        """Record every PackML transition before it takes effect (a failed write prevents it)."""
        if self.rec is not None:
            self.rec.post("state", t.actor, **{"from": t.source.name, "to": t.dest.name, "trigger": t.trigger,
                                                "reason": t.reason})
        self.wake.set()

    def _on_phase(self, change: PhaseChange) -> None:
        """Record every phase change before it takes effect: done, repeat, start."""
        if self.rec is None:
            return
        if change.source is not None and change.trigger in {p.value for p in Phase} | {"finish"}:
            self.rec.post("phase", change.actor, phase=change.source.value, event="done")
        repeat = change.trigger.startswith("repeat_")
        if repeat:
            self.rec.post("phase", change.actor, phase=change.dest.value if change.dest else "", event="repeat",
                          reason=change.reason)
        if change.dest is not None and not repeat:
            self.rec.post("phase", change.actor, phase=change.dest.value, event="start")

    # ---------------------------------------------------------------------------------------------- ControllerView
    def status(self) -> StatusView:
        """What the console and the OPC UA tags show of this run now."""
        return status_view(self)

    async def command(self, command: str, actor: str, reason: str = "", signature: dict[str, Any] | None = None) -> str:
        """A person's PackML command (`signature`: their e-signature when the command needs one, recorded with it).
        Unhold is refused while any interlock or hold-time check fails."""
        cmd = parse_command(command)  # UnknownCommand (a ValueError) names the allowed commands
        try:
            if cmd == Command.Unhold and self.machine.state == State.Held:
                problems = await resume_checks(self)
                if problems:
                    raise CommandRefused(Command.Unhold, State.Held, "; ".join(problems), actor=actor)
            if cmd not in self.machine.valid_commands():
                self.machine.command(cmd, actor=actor, reason=reason)  # raises CommandRefused with the reason
            await self.recorder.awrite("operator", actor, command=cmd.name, reason=reason,
                                       **({"signature": signature} if signature else {}))
            new = self.machine.command(cmd, actor=actor, reason=reason)
        except CommandRefused as exc:
            if self.rec is not None:
                await self.rec.awrite("command_refused", actor, command=cmd.name, state=exc.state.name, reason=str(exc))
            raise
        if new in (State.Aborting, State.Stopping):
            self.safe.stop_dispensing(f"{new.name} by {actor}")
        self.wake.set()
        return new.name

    def record_refusal(self, actor: str, kind: str, data: dict[str, Any]) -> bool:
        """A refused login or command (OPC UA server) into the running batch's record; False when no batch runs."""
        if self.rec is None or self.rec.failed or self.machine.state in (State.Complete, State.Aborted, State.Stopped):
            return False
        try:
            self.rec.post(kind, actor, **data)
        except RecordFailure as exc:
            self.fail(exc)
            return False
        return True

    async def acknowledge(self, alarm_id: int, actor: str) -> None:
        """A person acknowledges alarm `alarm_id` (KeyError if there is none)."""
        for i, a in enumerate(self.alarms):
            if a.alarm_id == alarm_id:
                await self.recorder.awrite("alarm_ack", actor, alarm_id=alarm_id, source=a.source)
                self.alarms[i] = AlarmView(a.alarm_id, a.severity, a.source, a.message, a.time, True, actor)
                return
        raise KeyError(f"no alarm {alarm_id}")

    def shutdown_now(self, why: str) -> None:
        """The process is asked to stop (SIGTERM/SIGINT): act at once (no new dispense, running one terminated,
        lamp off, positioner stopped) and record why; the caller then cancels the run."""
        self.live.inhibit.set()
        self.live.stop_signal, self.stop_reason = why, self.stop_reason or why
        self.wake.set()  # a run waiting Held for a person reaches its safe point and ends
        self.safe.terminate_now(why)
        self.safe.spawn(self.safe.lamp_off(why))
        self.safe.positioner_stop_soon(why)
        if self.rec is not None and not self.rec.failed:
            try:
                self.rec.post("shutdown", "system", reason=why, state=self.machine.state.name,
                               phase=self.phases.current.value if self.phases.current else None)
            except RecordFailure as exc:
                log.error("batch.shutdown_record_failed", error=str(exc))

    def fail(self, exc: BaseException) -> None:
        """Record failure or another fatal error from a callback: stop the run loop in a safe state (once)."""
        if self.fatal is not None:
            return
        self.fatal = exc
        self.safe.stop_dispensing(str(exc))
        self.safe.spawn(self.safe.lamp_off(str(exc)))
        self.wake.set()

    # ----------------------------------------------------------------------------------------------- run, resume
    async def run_new(self, *, lot: str, vials: int, operator: str, tip_lot: TipLot | None = None,
                      authenticated: bool = False, master_data: dict[str, Any] | None = None) -> BatchOutcome:
        """Create the batch in the record and run it from Stopped to Complete (or wherever it ends); `master_data`
        (the checks before start: recipe approval, qualification, lots, cleaning, clearance, APS) is recorded."""
        refusal = self.r.fill.vials_refusal(vials)
        if refusal is not None:
            raise ValueError(f"vials: {refusal}")
        self.planned, self.operator, self.tip_lot = vials, operator, tip_lot
        self.batch_id = self.store.create_batch(
            product=self.r.recipe.product_name, product_code=self.r.recipe.product_code,
            recipe_name=self.r.recipe.name, recipe_version=str(self.r.recipe.version), recipe_hash=self.loaded.sha256,
            recipe_snapshot=self.loaded.text, lot=lot, planned_vials=vials, operator=operator,
            mode="simulation" if self.site.record.simulation else self.r.recipe.mode,  # recipe mode: in the snapshot
            site_config=self.site.model_dump(mode="json", exclude={"plc": {"password"}}),
        )
        self.rec = BatchRecorder(self.store, self.batch_id, on_failure=self.fail)
        structlog.contextvars.bind_contextvars(batch=self.batch_id)  # every log event of this run names the batch
        note_batch(self.batch_id)  # a refused second controller is told which batch runs here
        await self.line.claim(self.batch_id)
        await self.rec.awrite("run_start", operator, lot=lot, planned_vials=vials, recipe_hash=self.loaded.sha256,
                              tip_lot=tip_lot.__dict__ if tip_lot else None,
                              signature={"meaning": "performed", "name": operator, "authenticated": authenticated})
        if master_data is not None:
            self.master_data = master_data
            await self.rec.awrite("master_data", operator, **master_data)
        return await self._drive(fresh=True)

    def _restore(self, batch_id: str, operator: str) -> None:
        """Rebuild machine, phases, times and counts from the record of a recovered (Held) batch."""
        header = self.store.batch(batch_id)
        self.batch_id, self.planned, self.operator = batch_id, header.planned_vials, operator
        self.rec = BatchRecorder(self.store, batch_id, on_failure=self.fail)
        structlog.contextvars.bind_contextvars(batch=batch_id)
        h = self.history = BatchHistory.from_entries(iter_entries(self.store, batch_id))
        if h.state != "Held" or h.finished:
            state = State[h.state] if h.state in State.__members__ else State.Stopped
            raise CommandRefused(Command.Unhold, state, "only a Held, unfinished batch can be resumed or aborted "
                                 "here (run `fillfinish batch recover` first)", actor=operator)
        self.machine = PackMLMachine.restored(State.Held, on_transition=self._on_transition)
        self.phases.restore(Phase(h.phase) if h.phase else None, [Phase(p) for p in h.phases_done])
        self.live.uv_end, self.live.tips_done, self.live.fill_start = h.uv_end, h.tips_done, h.fill_start
        self.live.line_checks_ok = Phase.line_checks.value in h.phases_done
        self.tip_lot = TipLot(**h.tip_lot) if h.tip_lot else None

    async def resume(self, batch_id: str, operator: str, reason: str) -> BatchOutcome:
        """Continue a recovered (Held) batch after a person asked for it; Unhold re-checks everything first."""
        self._restore(batch_id, operator)
        await self.line.claim(batch_id)
        await start_monitoring(self)  # the driver connected with every subscribed value already in hand
        try:
            await self.command("Unhold", operator, reason)
        except CommandRefused:
            await stop_monitoring(self)
            raise
        self.live.pump_needs_init = True
        return await self._drive(fresh=False)

    async def abort_held(self, batch_id: str, operator: str, reason: str) -> BatchOutcome:
        """Abort a recovered (Held) batch: safe state, Aborted, disposition."""
        self._restore(batch_id, operator)
        await self.line.claim(batch_id)
        await start_monitoring(self)
        await self.command("Abort", operator, reason)
        return await self._drive(fresh=False)

    async def _drive(self, *, fresh: bool) -> BatchOutcome:
        """Run the machine until it rests in Complete, Stopped or Aborted."""
        self.run_task = asyncio.current_task()
        try:
            if fresh:
                await start_monitoring(self)
                self.machine.command(Command.Reset, actor=self.operator, reason="new batch")
                await acting.resetting(self)
                self.machine.command(Command.Start, actor=self.operator, reason="start batch")
                await acting.starting(self)
            try:
                await self._execute()
            except CompleteRequested:
                await self.recorder.awrite("exception", message="filling ended early by a Complete command")
            await acting.completing(self)
        except BatchEnded:
            pass
        except RecordFailure as exc:
            return await record_failed(self, exc)
        except asyncio.CancelledError:  # Ctrl-C or the process is asked to stop: make the line safe, then go
            await asyncio.shield(self._emergency_safe_state())
            raise
        finally:
            await stop_monitoring(self)
        if self.fatal is not None:
            return await record_failed(self, self.fatal)
        return await finish(self)

    async def _emergency_safe_state(self) -> None:
        """Terminate any dispense and switch the lamp off (the run is being torn down)."""
        await self.safe.terminate("controller cancelled")
        await self.safe.lamp_off("controller cancelled")

    # ------------------------------------------------------------------------------------------------ Execute
    async def _execute(self) -> None:
        """The sequence: the current phase's step, then the phase the sequence's table says comes next; an
        interrupted or faulted step holds the batch and is done again after the unhold."""
        while True:
            await self.safe_point()
            current = self.phases.current
            if current == Phase.post_fill:
                return  # post_fill is the Completing state's
            step = self.steps.get(current) if current is not None else None
            if step is None:
                self.machine.command(Command.Abort, actor="system", reason="no batch phase in progress")
                continue
            try:
                await step.run(self)
                self._advance()
            except Exception as exc:  # noqa: BLE001 - sorted by _step_failed; anything else goes on up
                await self._step_failed(current, exc)

    def _advance(self) -> None:
        """Enter the phase after the current one, as the phase machine's table orders it (its guards decide)."""
        nxt = self.phases.next_phase
        assert nxt is not None, "no phase follows; post_fill ends in Completing"
        self.phases.advance(nxt, self.facts())
        if nxt in self.steps:
            self.steps[nxt].entered(self)

    async def _step_failed(self, phase: Phase, exc: Exception) -> None:
        """A step did not finish: record why and hold; a refused or interrupted UV step is repeated after it."""
        where = phase.value
        log.warning("batch.step_failed", phase=where, error=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, SequenceRefused):
            self._repeat_expired(exc)  # recorded before the hold, so the person sees what resuming will do
            await acting.hold_for(self, f"sequence refused: {exc}")
        elif isinstance(exc, (UvCycleFault, UvCycleInterrupted)):
            await self.recorder.awrite("exception", message=str(exc), phase=where)
            await acting.hold_for(self, str(exc))
            if phase in (Phase.uv_cycle, Phase.tip_sterilisation):
                self.phases.repeat(phase, reason=f"repeat after: {exc}")
        elif isinstance(exc, DeviceFault):
            await self.recorder.awrite("exception", message=str(exc), phase=where)
            await acting.hold_for(self, str(exc))
        elif isinstance(exc, (PlcError, PumpError, BalanceError)):
            if isinstance(exc, PumpError):
                self.live.pump_needs_init = True
            await self.recorder.awrite("exception", message=f"{type(exc).__name__}: {exc}", phase=where)
            await acting.hold_for(self, f"device fault: {exc}")
        else:
            raise exc

    def _repeat_expired(self, exc: SequenceRefused) -> None:
        """A hold time ran out (typed Reason): the step it protects must be repeated (Annex 1 8.18)."""
        for refusal in exc.refusals:
            repeat = REPEAT_FOR.get(refusal.reason)
            if repeat is not None and self.phases.current in repeat[1]:
                self.phases.repeat(repeat[0], reason=" ".join(exc.reasons))
                if repeat[0] == Phase.uv_cycle:
                    self.live.uv_end = None
                else:
                    self.live.tips_done = None
                return

    # ------------------------------------------------------------------------------------ what the steps share
    async def safe_point(self) -> None:
        """Between steps: act on Hold / Stop / Abort; return only in Execute (fillfinish/batch/acting.py)."""
        await acting.safe_point(self)

    def facts(self) -> Facts:
        """What the phase guards read, from this run's state now."""
        h, live = self.r.hold_times, self.live
        return Facts(
            now=self.clock.now(), uv_end_to_fill_start_s=h.uv_end_to_fill_start_s,
            tips_sterilised_to_use_s=h.tips_sterilised_to_use_s, line_checks_ok=live.line_checks_ok,
            uv_dose_reached=live.uv_end is not None, uv_end_time=live.uv_end,
            tips_done=live.tips_done is not None, tips_done_time=live.tips_done,
            lamp_confirmed_off=live.lamp_off_confirmed,  # set only by a read of the lamp feedback after "off"
            door_closed=bool(latest(self.plc, "door_closed")),
            environment_ok=self.monitor.environment_ok() if self.monitor else False,
        )

    def interrupted(self) -> str | None:
        """Why a UV exposure must stop now (not Execute, door open), or None."""
        if self.machine.state != State.Execute:
            return f"machine {self.machine.state.name}"
        if not latest(self.plc, "door_closed"):
            return "door open"
        return None

    async def move(self, position: int, timeout_s: float = 30.0) -> None:
        """Move the positioner, telling the phase watch first that this target is ours."""
        self.live.commanded_target = position
        self.live.commanded_targets.append(position)
        await self.plc.move_positioner(position, timeout_s=timeout_s)
