"""The batch controller: runs one batch through the PackML machine and the phase sequence, writing the record.

Order of every hardware action: intent entry committed -> device call -> outcome entry committed. Interlocks arrive
from the EnvironmentMonitor in the event loop: the dangerous part is done at once (terminate a running dispense,
lamp off when the door opens), then Hold is requested; the run loop stops at the next safe point and waits for a
person. A record write failure stops everything in a safe state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import structlog

from fillfinish.batch.disposition import Disposition, decide
from fillfinish.quality import retained
from fillfinish.batch.history import BatchHistory, VialOutcome
from fillfinish.batch.recorder import BatchRecorder, RecordFailure
from fillfinish.batch.uv_cycle import UvCycleFault, UvCycleInterrupted, UvResult, latest, run_uv_exposure
from fillfinish.clock import Clock
from fillfinish.config import SiteConfig
from fillfinish.control import AlarmView, StatusView
from fillfinish.line import Line
from fillfinish.lock import note_batch
from fillfinish.machine.packml import Command, CommandRefused, PackMLMachine, State, Transition, parse_command
from fillfinish.machine.phases import Facts, Phase, PhaseChange, PhaseSequence, Reason, SequenceRefused
from fillfinish.monitor import Alarm, EnvironmentMonitor, EnvLimits
from fillfinish.phase_watch import LAMP_OFF_SOURCES, PhaseWatch
from fillfinish.recipes.loader import LoadedRecipe
from fillfinish.record.store import RecordStore
from hal.balance.errors import BalanceError
from hal.dispenser.errors import DispenseOutcomeUnknown, DispenseTerminated, PumpError
from hal.plc.errors import PlcError

log = structlog.get_logger("fillfinish.batch")

UNIT_MODES = {"production": 1, "media_fill": 4}


class BatchEnded(Exception):
    """The run loop leaves because the machine is stopping or aborting."""


class DeviceFault(RuntimeError):
    """A device failed in a way that needs a person (the machine holds)."""


class CompleteRequested(Exception):
    """A person issued Complete during Execute: end the filling early and go through Completing."""


@dataclass
class TipLot:
    """A pre-sterilised dispensing-tip lot: its sterilisation cycle id and expiry (ISO date)."""

    lot: str
    sterilisation_cycle_id: str
    expiry: str


@dataclass
class BatchOutcome:
    """What a finished run reports to its caller."""

    batch_id: str
    state: str
    disposition: Disposition | None
    accepted: int = 0
    rejected: int = 0
    uncertain: int = 0
    uv_dose_mj_cm2: float = 0.0
    tip_dose_mj_cm2: float = 0.0
    excursions: list[str] = field(default_factory=list)
    message: str = ""


ProgressFn = Callable[[str, float, float], None]  # (what, done, total)


class BatchController:
    """Runs (or resumes) one batch on a Line, recording to a RecordStore, on a shared Clock."""

    def __init__(
        self,
        *,
        line: Line,
        store: RecordStore,
        clock: Clock,
        recipe: LoadedRecipe,
        site: SiteConfig,
        progress: ProgressFn | None = None,
    ) -> None:
        self.line = line
        self.store = store
        self.clock = clock
        self.loaded = recipe
        self.r = recipe.recipe
        self.site = site
        self.progress = progress or (lambda what, done, total: None)
        self.rec: BatchRecorder | None = None
        self.machine = PackMLMachine(on_transition=self._on_transition)
        self.phases = PhaseSequence(on_change=self._on_phase)
        self.monitor: EnvironmentMonitor | None = None
        self.watch: PhaseWatch | None = None  # PLC state that contradicts the phase (fillfinish/phase_watch.py)
        self._lamp_allowed = False  # True only inside a UV step
        self._commanded_target: int | None = None  # the positioner target this controller last sent
        self.history = BatchHistory()
        self.batch_id: str | None = None
        self.planned = 0
        self.operator = ""
        self.alarms: list[AlarmView] = []
        self.stop_reason = ""
        self._wake = asyncio.Event()
        self._dispensing = False
        self._inhibit = threading.Event()  # set by an interlock: no dispense may start until a person unholds
        self._hold_cause: str | None = None
        self._uv_end: float | None = None
        self._tips_done: float | None = None
        self._fill_start: float | None = None
        self._lamp_off_confirmed = True
        self._uv: dict[str, UvResult] = {}
        self._uv_live = 0.0
        self._consecutive_rejects = 0
        self._fatal: BaseException | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._safety_pending = 0  # safety actions (T, lamp off) not yet answered: monitor record writes wait
        self._line_checks_ok = False
        self._pump_needs_init = False
        self.tip_lot: TipLot | None = None
        self.master_data: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------------ the record
    def _write(self, kind: str, actor: str = "system", /, **data: Any) -> int:
        assert self.rec is not None
        return self.rec.write(kind, actor, **data)

    def _on_transition(self, t: Transition) -> None:
        """Record every PackML transition before it takes effect (a failed write prevents it)."""
        if self.rec is not None:
            self._write("state", t.actor, **{"from": t.source.name, "to": t.dest.name, "trigger": t.trigger,
                                             "reason": t.reason})
        self._wake.set()

    def _on_phase(self, change: PhaseChange) -> None:
        if self.rec is None:
            return
        if change.source is not None and change.trigger in {p.value for p in Phase} | {"finish"}:
            self._write("phase", change.actor, phase=change.source.value, event="done")
        if change.trigger.startswith("repeat_"):
            self._write("phase", change.actor, phase=change.dest.value if change.dest else "", event="repeat",
                        reason=change.reason)
        if change.dest is not None and not change.trigger.startswith("repeat_"):
            self._write("phase", change.actor, phase=change.dest.value, event="start")

    # ---------------------------------------------------------------------------------------------- ControllerView
    def status(self) -> StatusView:
        c = self.history.counts
        env = {k: v for k, v in (self.monitor.latest.items() if self.monitor else []) if isinstance(v, (int, float))}
        return StatusView(
            state=int(self.machine.state), state_name=self.machine.state.name,
            unit_mode=UNIT_MODES.get(self.r.recipe.mode, 1), batch_id=self.batch_id, product=self.r.recipe.product_name,
            phase=self.phases.current.value if self.phases.current else None, planned=self.planned,
            processed=c["accepted"], defective=c["rejected"] + c["uncertain"],
            uv_dose_mj_cm2=round(self._uv["uv_cycle"].dose_mj_cm2 if "uv_cycle" in self._uv else self._uv_live, 2),
            stop_reason=self.stop_reason, valid_commands=tuple(cmd.name for cmd in self.machine.valid_commands()),
            alarms=tuple(self.alarms), environment=env, environment_limits=self._env_limits(),
            hold_cause=(self._hold_cause or "") if self.machine.state in (State.Held, State.Holding) else "",
            uv_target_mj_cm2=float(self.r.uv.target_dose_mj_cm2),
        )

    def _env_limits(self) -> dict[str, tuple[float | None, float | None]]:
        """The recipe's action limits and ranges, keyed like the environment values (for the console)."""
        e = self.r.environment
        return {"particles_0_5um_per_m3": (None, e.particles_0_5um_action_per_m3),
                "particles_5um_per_m3": (None, e.particles_5um_action_per_m3),
                "hepa_dp_pa": (e.hepa_dp_min_pa, e.hepa_dp_max_pa),
                "downflow_m_s": (e.downflow_min_m_s, e.downflow_max_m_s),
                "particle_flow_l_min": (e.min_sample_flow_l_min, None)}

    async def command(self, command: str, actor: str, reason: str = "", signature: dict[str, Any] | None = None) -> str:
        """A person's PackML command (`signature`: their e-signature when the command needs one, recorded with it).
        Unhold is refused while any interlock or hold-time check fails."""
        cmd = parse_command(command)  # UnknownCommand (a ValueError) names the allowed commands
        try:
            if cmd == Command.Unhold and self.machine.state == State.Held:
                problems = await self._resume_checks()
                if problems:
                    raise CommandRefused(Command.Unhold, State.Held, "; ".join(problems), actor=actor)
            if parse_command(cmd) not in self.machine.valid_commands():
                self.machine.command(cmd, actor=actor, reason=reason)  # raises CommandRefused with the reason
            self._write("operator", actor, command=parse_command(cmd).name, reason=reason,
                        **({"signature": signature} if signature else {}))
            new = self.machine.command(cmd, actor=actor, reason=reason)
        except CommandRefused as exc:
            if self.rec is not None:
                self._write("command_refused", actor, command=cmd.name, state=exc.state.name,
                            reason=str(exc))
            raise
        if new in (State.Aborting, State.Stopping):
            self._inhibit.set()
            if self._dispensing:
                self._terminate_now(f"{new.name} by {actor}")
        self._wake.set()
        return new.name

    def record_refusal(self, actor: str, kind: str, data: dict[str, Any]) -> bool:
        """A refused login or command (OPC UA server) into the running batch's record; False when no batch runs."""
        if self.rec is None or self.rec.failed or self.machine.state in (State.Complete, State.Aborted, State.Stopped):
            return False
        try:
            self._write(kind, actor, **data)
        except RecordFailure as exc:
            self._fail(exc)
            return False
        return True

    async def acknowledge(self, alarm_id: int, actor: str) -> None:
        for i, a in enumerate(self.alarms):
            if a.alarm_id == alarm_id:
                self._write("alarm_ack", actor, alarm_id=alarm_id, source=a.source)
                self.alarms[i] = AlarmView(a.alarm_id, a.severity, a.source, a.message, a.time, True, actor)
                return
        raise KeyError(f"no alarm {alarm_id}")

    # --------------------------------------------------------------------------------------------- alarms, safety
    def _on_alarm(self, alarm: Alarm) -> None:
        """Monitor callback (event loop): act at once where safety needs it (the pump's T is handed to a worker
        thread before anything else; the lamp-off write starts before the record writes), then record and Hold."""
        if alarm.severity != "alert":
            self._inhibit.set()
            if self._dispensing:
                self._terminate_now(alarm.message)
        if (alarm.source in ("door", "lamp", "plc_link") and not self._lamp_off_confirmed) \
                or alarm.source in LAMP_OFF_SOURCES:  # a lamp on when it must be off (phase watch)
            self._safety_pending += 1  # record writes wait until the lamp-off write has been answered
            self._spawn(self._lamp_off_then_record(alarm))
            return
        asyncio.get_running_loop().call_soon(self._after_safety, self._record_alarm, alarm)

    def _after_safety(self, write: Callable[..., None], *args: Any) -> None:
        """Run a monitor record write now, or once the safety actions in flight (the pump's T, a lamp-off write)
        have been answered: a synchronous commit in the event loop must not delay them."""
        if self._safety_pending > 0:
            asyncio.get_running_loop().call_later(0.0005, self._after_safety, write, *args)
        else:
            write(*args)

    async def _lamp_off_then_record(self, alarm: Alarm) -> None:
        """Lamp off first (a synchronous record write queued before it would delay its request), then the alarm,
        its deviation and the Hold, then the safe-state entry."""
        try:
            await self.line.plc.set_lamp(False)
            failure = None
        except Exception as exc:  # noqa: BLE001 - a safety action reports, never raises
            failure = exc
            log.error("batch.lamp_off_failed", error=str(exc))
        finally:
            self._safety_pending -= 1
        self._record_alarm(alarm)
        if failure is None and self.rec and not self.rec.failed:
            try:
                self._write("safe_state", "system", action="lamp_off", reason=alarm.message)
            except RecordFailure as exc:
                self._fail(exc)

    def _record_alarm(self, alarm: Alarm) -> None:
        """The alarm, its deviation and the Hold, in the record (after the safety actions have left)."""
        try:
            seq = self._write("alarm", "monitor", **alarm.as_record())
            alarm_id = len(self.alarms) + 1
            self.alarms.append(AlarmView(alarm_id, alarm.severity, alarm.source, alarm.message,
                                         _iso(alarm.time or self.clock.now())))
            if alarm.severity != "alert":
                self._write("deviation", "monitor", event="opened", alarm_entry=seq, source=alarm.source,
                            message=alarm.message, phase=self.phases.current.value if self.phases.current else None,
                            state=self.machine.state.name)
                self.stop_reason = self.stop_reason or alarm.message
                self._hold_cause = alarm.message
                self.machine.request_hold("monitor", alarm.message)
        except RecordFailure as exc:
            self._fail(exc)
        self._wake.set()

    def _on_clear(self, source: str) -> None:
        self._after_safety(self._record_clear, source)

    def _record_clear(self, source: str) -> None:
        """The alarm's clearing, in the record."""
        try:
            self._write("alarm_clear", "monitor", source=source)
        except RecordFailure as exc:
            self._fail(exc)

    def _on_sample(self, sample: dict[str, Any]) -> None:
        self._after_safety(self._record_sample, sample)

    def _record_sample(self, sample: dict[str, Any]) -> None:
        """One particle sample, in the record."""
        try:
            self._write("measurement", "monitor", signal="particles", **sample)
        except RecordFailure as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Record failure or another fatal error from a callback: stop the run loop in a safe state."""
        if self._fatal is None:
            self._fatal = exc
        self._inhibit.set()
        if self._dispensing:
            self._terminate_now(str(exc))
        self._spawn(self._lamp_off_now(str(exc)))
        self._wake.set()

    def _safety_done(self, _future: Any) -> None:
        """A safety action was answered: record writes may run again."""
        self._safety_pending -= 1

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _terminate_now(self, why: str) -> None:
        """Stop a running dispense at once: the pump's T is submitted to a worker thread right now."""
        future = asyncio.get_running_loop().run_in_executor(None, self.line.pump.terminate)
        self._safety_pending += 1
        future.add_done_callback(self._safety_done)
        self._spawn(_logged(future, "terminate"))
        log.warning("batch.terminate_dispense", reason=why)  # after the T has left for its worker thread

    def shutdown_now(self, why: str) -> None:
        """The process is asked to stop (SIGTERM/SIGINT): act at once (no new dispense, running one terminated,
        lamp off, positioner stopped) and record why; the caller then cancels the run."""
        self._inhibit.set()
        self.stop_reason = self.stop_reason or why
        self._terminate_now(why)
        self._spawn(self._lamp_off_now(why))
        self._spawn(self._stop_positioner(why))
        if self.rec is not None and not self.rec.failed:
            try:
                self._write("shutdown", "system", reason=why, state=self.machine.state.name,
                            phase=self.phases.current.value if self.phases.current else None)
            except RecordFailure as exc:
                log.error("batch.shutdown_record_failed", error=str(exc))

    async def _stop_positioner(self, why: str) -> None:
        """Stop the vial positioner where it is: a move to its current position replaces any move under way."""
        try:
            current = await self.line.plc.read("positioner_current")
            await self._move(int(current), timeout_s=5.0)
            if self.rec and not self.rec.failed:
                self._write("safe_state", "system", action="positioner_stop", position=current, reason=why)
        except Exception as exc:  # noqa: BLE001 - a safety action reports, never raises
            log.error("batch.positioner_stop_failed", error=str(exc))

    async def _lamp_off_now(self, why: str) -> None:
        try:
            await self.line.plc.set_lamp(False)
            if self.rec and not self.rec.failed:
                self._write("safe_state", "system", action="lamp_off", reason=why)
        except Exception as exc:  # noqa: BLE001 - a safety action reports, never raises
            log.error("batch.lamp_off_failed", error=str(exc))

    # ----------------------------------------------------------------------------------------------- run, resume
    async def run_new(self, *, lot: str, vials: int, operator: str, tip_lot: TipLot | None = None,
                      authenticated: bool = False, master_data: dict[str, Any] | None = None) -> BatchOutcome:
        """Create the batch in the record and run it from Stopped to Complete (or wherever it ends); `master_data`
        (the checks before start: recipe approval, qualification, lots, cleaning, clearance, APS) is recorded."""
        f = self.r.fill
        if not f.vial_count_min <= vials <= f.vial_count_max:
            raise ValueError(f"vials: {vials} outside the recipe's limits; allowed: {f.vial_count_min}-"
                             f"{f.vial_count_max}")
        self.planned, self.operator, self.tip_lot = vials, operator, tip_lot
        self.batch_id = self.store.create_batch(
            product=self.r.recipe.product_name, product_code=self.r.recipe.product_code,
            recipe_name=self.r.recipe.name, recipe_version=str(self.r.recipe.version), recipe_hash=self.loaded.sha256,
            recipe_snapshot=self.loaded.text, lot=lot, planned_vials=vials, operator=operator,
            mode="simulation" if self.site.record.simulation else self.r.recipe.mode,  # recipe mode: in the snapshot
            site_config=self.site.model_dump(mode="json", exclude={"plc": {"password"}}),
        )
        self.rec = BatchRecorder(self.store, self.batch_id)
        structlog.contextvars.bind_contextvars(batch=self.batch_id)  # every log event of this run names the batch
        note_batch(self.batch_id)  # a refused second controller is told which batch runs here
        await self.line.claim(self.batch_id)
        self._write("run_start", operator, lot=lot, planned_vials=vials, recipe_hash=self.loaded.sha256,
                    tip_lot=tip_lot.__dict__ if tip_lot else None,
                    signature={"meaning": "performed", "name": operator, "authenticated": authenticated})
        if master_data is not None:
            self.master_data = master_data
            self._write("master_data", operator, **master_data)
        return await self._drive(fresh=True)

    def _restore(self, batch_id: str, operator: str) -> None:
        """Rebuild machine, phases, times and counts from the record of a recovered (Held) batch."""
        header = self.store.batch(batch_id)
        self.batch_id, self.planned, self.operator = batch_id, header.planned_vials, operator
        self.rec = BatchRecorder(self.store, batch_id)
        structlog.contextvars.bind_contextvars(batch=batch_id)
        self.history = BatchHistory.from_entries(self.store.entries(batch_id))
        if self.history.state != "Held" or self.history.finished:
            state = State[self.history.state] if self.history.state in State.__members__ else State.Stopped
            raise CommandRefused(Command.Unhold, state, "only a Held, unfinished batch can be resumed or aborted "
                                 "here (run `fillfinish batch recover` first)", actor=operator)
        self.machine = PackMLMachine.restored(State.Held, on_transition=self._on_transition)
        current = Phase(self.history.phase) if self.history.phase else None
        self.phases.restore(current, [Phase(p) for p in self.history.phases_done])
        self._uv_end, self._tips_done, self._fill_start = (self.history.uv_end, self.history.tips_done,
                                                           self.history.fill_start)
        self._line_checks_ok = Phase.line_checks.value in self.history.phases_done
        self.tip_lot = TipLot(**self.history.tip_lot) if self.history.tip_lot else None

    async def resume(self, batch_id: str, operator: str, reason: str) -> BatchOutcome:
        """Continue a recovered (Held) batch after a person asked for it; Unhold re-checks everything first."""
        self._restore(batch_id, operator)
        await self.line.claim(batch_id)
        await self._start_monitoring()  # the driver connected with every subscribed value already in hand
        try:
            await self.command("Unhold", operator, reason)
        except CommandRefused:
            await self._stop_monitoring()
            raise
        self._pump_needs_init = True
        return await self._drive(fresh=False)

    async def abort_held(self, batch_id: str, operator: str, reason: str) -> BatchOutcome:
        """Abort a recovered (Held) batch: safe state, Aborted, disposition."""
        self._restore(batch_id, operator)
        await self.line.claim(batch_id)
        await self._start_monitoring()
        await self.command("Abort", operator, reason)
        return await self._drive(fresh=False)

    async def _start_monitoring(self) -> None:
        self.monitor = EnvironmentMonitor(
            self.line.plc, EnvLimits.from_recipe(self.r.environment), self.clock,
            on_alarm=self._on_alarm, on_clear=self._on_clear, on_sample=self._on_sample,
        )
        self.monitor.start()
        self.watch = PhaseWatch(self.line.plc, self.clock, lamp_allowed=lambda: self._lamp_allowed,
                                commanded_target=lambda: self._commanded_target, on_alarm=self._on_alarm)
        self.watch.start()
        self._write("monitoring", "system", event="started")

    async def _stop_monitoring(self) -> None:
        if self.monitor is not None:
            await self.monitor.stop()
        if self.watch is not None:
            await self.watch.stop()
        for task in list(self._tasks):
            try:
                await task
            except Exception:  # noqa: BLE001 - safety tasks log their own failures
                pass

    async def _drive(self, *, fresh: bool) -> BatchOutcome:
        """Run the machine until it rests in Complete, Stopped or Aborted."""
        try:
            if fresh:
                await self._start_monitoring()
                self.machine.command(Command.Reset, actor=self.operator, reason="new batch")
                await self._resetting()
                self.machine.command(Command.Start, actor=self.operator, reason="start batch")
                await self._starting()
            try:
                await self._execute()
            except CompleteRequested:
                self._write("exception", message="filling ended early by a Complete command")
            await self._completing()
        except BatchEnded:
            pass
        except RecordFailure as exc:
            return await self._record_failed(exc)
        except asyncio.CancelledError:  # Ctrl-C or the process is asked to stop: make the line safe, then go
            await asyncio.shield(self._emergency_safe_state())
            raise
        finally:
            await self._stop_monitoring()
        if self._fatal is not None:
            return await self._record_failed(self._fatal)
        return await self._finish()

    async def _emergency_safe_state(self) -> None:
        """Terminate any dispense and switch the lamp off, recording nothing more (the run is being torn down)."""
        self._inhibit.set()
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.line.pump.terminate)
        except Exception as exc:  # noqa: BLE001
            log.error("batch.terminate_failed", error=str(exc))
        await self._lamp_off_now("controller cancelled")

    async def _record_failed(self, exc: BaseException) -> BatchOutcome:
        """The record cannot be written: safe state (dispense terminated, lamp off), nothing more is attempted."""
        log.error("batch.record_failed", batch=self.batch_id, error=str(exc))
        try:
            await self.line.plc.set_lamp(False)
        except Exception:  # noqa: BLE001
            pass
        return BatchOutcome(self.batch_id or "", self.machine.state.name, None,
                            message=f"batch stopped in a safe state: {exc}")

    async def _finish(self) -> BatchOutcome:
        """Write the disposition if the batch ended without one, and report."""
        assert self.batch_id is not None
        self.history = BatchHistory.from_entries(self.store.entries(self.batch_id))
        state = self.machine.state.name
        if self.history.disposition is None and state in ("Stopped", "Aborted", "Complete"):
            disp = decide(self.history, self.planned, state)
            self._write("disposition", "system", **disp.as_record())
            self.history.disposition = disp.as_record()
        d = self.history.disposition or decide(self.history, self.planned, state).as_record()
        disp = Disposition(d["verdict"], d["reasons"], d["reconciliation"])
        c = self.history.counts
        return BatchOutcome(
            self.batch_id or "", state, disp, c["accepted"], c["rejected"], c["uncertain"],
            self._uv["uv_cycle"].dose_mj_cm2 if "uv_cycle" in self._uv else self.history.uv_dose,
            self._uv["tip_uv"].dose_mj_cm2 if "tip_uv" in self._uv else 0.0,
            [d["message"] for _, d in self.history.alarms if d.get("severity") != "alert"],
        )

    # ------------------------------------------------------------------------------------------ PackML acting states
    async def _safe_point(self) -> None:
        """Between steps: act on Hold / Stop / Abort; return only in Execute."""
        while True:
            if self._fatal is not None:
                raise RecordFailure(str(self._fatal))
            state = self.machine.state
            problems = (self.monitor.problems() if self.monitor else []) + (self.watch.problems() if self.watch else [])
            if problems and state in (State.Execute, State.Suspended):  # an interlock still in force holds again
                self._inhibit.set()
                self._hold_cause = problems[0]
                self.machine.request_hold("monitor", "; ".join(problems))
                continue
            if state == State.Execute:
                return
            if state == State.Holding:
                self.progress("held", 0, 0)
                self.machine.state_complete(State.Holding, reason=self._hold_cause or "hold")
                continue
            if state == State.Unholding:
                self._hold_cause = None
                if not problems:
                    self._inhibit.clear()
                self._consecutive_rejects = 0
                self.machine.state_complete(State.Unholding, reason="interlocks re-checked by the unhold")
                continue
            if state == State.Suspending:  # external cause (e.g. starved of vials): wait, no alarm
                self.machine.state_complete(State.Suspending, reason="suspended at a safe point")
                continue
            if state == State.Unsuspending:
                self.machine.state_complete(State.Unsuspending, reason="unsuspended")
                continue
            if state == State.Completing:
                raise CompleteRequested()
            if state in (State.Stopping, State.Aborting):
                await self._to_safe_state(state.name)
                self.machine.state_complete(state)
                raise BatchEnded(state.name)
            if state in (State.Stopped, State.Aborted):
                raise BatchEnded(state.name)
            self._wake.clear()
            await self._wake.wait()

    async def _to_safe_state(self, why: str) -> None:
        """Stopping/Aborting: lamp commanded off and confirmed by its feedback; no dispense runs (checked)."""
        try:
            await self.line.plc.set_lamp(False)
            lamp_off = not await self.line.plc.read("lamp_on")
            self._lamp_off_confirmed = lamp_off
            self._write("safe_state", action="lamp_off", ok=lamp_off, reason=why, dispensing=self._dispensing)
        except PlcError as exc:
            self._write("safe_state", action="lamp_off", ok=False, error=str(exc), reason=why)

    async def _move(self, position: int, timeout_s: float = 30.0) -> None:
        """Move the positioner, telling the phase watch first that this target is ours."""
        self._commanded_target = position
        await self.line.plc.move_positioner(position, timeout_s=timeout_s)

    async def _go_home(self, why: str) -> None:
        """Positioner to home (0): the tip over the waste tray, where priming and initialising may expel liquid."""
        seq = self._write("intent", action="position", vial=0, reason=why)
        await self._move(0)
        self._write("outcome", action="position", intent=seq, ok=True, vial=0)

    async def _resetting(self) -> None:
        """Resetting: tip over the waste tray, initialise the pump, identify every device."""
        pump, balance = self.line.pump, self.line.balance
        try:
            await self._go_home("initialise the pump over the waste tray")
        except PlcError as exc:
            self.machine.command(Command.Stop, actor="system", reason=f"vial positioner cannot go home: {exc}")
            await self._safe_point()
            return
        seq = self._write("intent", action="initialise_pump")
        try:
            ident = await self.line.call(pump.identity)
            await self.line.call(pump.initialise, force=0 if self.line.config.dispenser.syringe_ul > 500 else 1)
            await self.line.call(pump.set_resolution, self.line.config.dispenser.resolution)
            sn = await self.line.call(balance.serial_number)
        except (PumpError, BalanceError) as exc:
            self._write("outcome", action="initialise_pump", intent=seq, ok=False, error=str(exc))
            self.machine.command(Command.Stop, actor="system", reason=f"device check failed: {exc}")
            await self._safe_point()
            return
        self._write("outcome", action="initialise_pump", intent=seq, ok=True, pump_firmware=ident,
                    balance_serial=sn)
        self.machine.state_complete(State.Resetting)

    async def _starting(self) -> None:
        """Starting: the line checks of the domain brief; any failure stops the batch before it begins."""
        self.phases.advance(Phase.line_checks, self._facts())
        try:
            problems = await self._line_checks()
        except (PlcError, PumpError, BalanceError) as exc:
            self._write("line_check", check="devices", ok=False, detail=f"{type(exc).__name__}: {exc}")
            problems = [f"devices: {exc}"]
        if problems:
            self.stop_reason = "; ".join(problems)
            self.machine.command(Command.Stop, actor="system", reason=f"line checks failed: {self.stop_reason}")
            await self._safe_point()
            return
        self._line_checks_ok = True
        self.machine.state_complete(State.Starting)

    async def _line_checks(self) -> list[str]:
        """Devices, environment, door, APS validity, lamp life, balance check; each recorded."""
        plc, site, now = self.line.plc, self.site.site, self.clock.now()
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        checks: list[tuple[str, bool, str]] = []
        checks.append(("plc_connected", bool(plc.connected), "PLC answers"))
        checks.append(("door_closed", bool(latest(plc, "door_closed")), "door closed"))
        hours = float(await plc.read("lamp_hours"))
        checks.append(("lamp_life", hours < site.lamp_max_hours,
                       f"lamp hours {hours:.0f} below the limit {site.lamp_max_hours:g} h"))
        if hours >= site.lamp_warn_hours:
            self._write("warning", source="lamp", message=f"lamp hours {hours:.0f} >= warning {site.lamp_warn_hours:g}")
        checks.append(("lamp_fault", not latest(plc, "lamp_fault"), "no lamp fault"))
        aps_last, aps_until = site.aps_last_success, site.aps_last_success + dt.timedelta(days=site.aps_validity_days)
        aps = self.master_data.get("aps") or {}
        if aps.get("valid_until"):  # the line's APS from the record (masterdata/aps.py), checked again here
            aps_last, aps_until = aps["last_pass"], dt.date.fromisoformat(aps["valid_until"])
        if self.r.recipe.mode == "production":
            checks.append(("aps_valid", today <= aps_until,
                           f"last successful media fill {aps_last} valid until {aps_until}"))
        checks.append(("balance_check", today <= site.balance_check_valid_until,
                       f"balance check valid until {site.balance_check_valid_until}"))
        assert self.monitor is not None
        env_problems = self.monitor.problems()
        checks.append(("environment", not env_problems, "; ".join(env_problems) or "HEPA, airflow, particles in limits"))
        for name, ok, detail in checks:
            self._write("line_check", check=name, ok=ok, detail=detail)
        return [f"{name}: {detail}" for name, ok, detail in checks if not ok]

    def _facts(self) -> Facts:
        h = self.r.hold_times
        return Facts(
            now=self.clock.now(), uv_end_to_fill_start_s=h.uv_end_to_fill_start_s,
            tips_sterilised_to_use_s=h.tips_sterilised_to_use_s, line_checks_ok=self._line_checks_ok,
            uv_dose_reached=self._uv_end is not None, uv_end_time=self._uv_end,
            tips_done=self._tips_done is not None, tips_done_time=self._tips_done,
            lamp_confirmed_off=self._lamp_off_confirmed,  # set only by a read of the lamp feedback after "off"
            door_closed=bool(latest(self.line.plc, "door_closed")),
            environment_ok=self.monitor.environment_ok() if self.monitor else False,
        )

    async def _restore_line_guards(self) -> None:
        """Before an Unhold (a person decided): take the line back on the PLC after its watchdog tripped (the trip
        is in the record as an alarm) and lock the door again if it was unlocked while closed."""
        plc = self.line.plc
        try:
            if latest(plc, "watchdog_tripped") or (self.watch and "plc_watchdog" in self.watch.active):
                await self.line.claim(self.batch_id)
                await self.line.guard.reset_alarm()
                if self.watch:
                    self.watch.active.pop("plc_watchdog", None)
            if latest(plc, "door_closed") and not latest(plc, "door_locked"):
                seq = self._write("intent", action="door_lock", locked=True, reason="before unhold")
                await plc.set_door_lock(True)
                self._write("outcome", action="door_lock", intent=seq, ok=True, locked=True)
                if self.watch:
                    self.watch.active.pop("door_unlocked", None)
        except PlcError as exc:
            log.warning("batch.line_guards_not_restored", error=str(exc))

    async def _resume_checks(self) -> list[str]:
        """What Unhold re-checks: every interlock, the environment, and the hold times still ahead."""
        problems: list[str] = []
        try:
            await self.line.call(self.line.pump.query, False)  # an error code is cleared by re-initialising
        except PumpError as exc:
            problems.append(f"pump does not answer: {exc}")
        # read the interlocks after the awaits, so nothing that changed meanwhile is missed
        await self._restore_line_guards()
        problems += list(self.monitor.problems()) if self.monitor else ["monitoring not running"]
        problems += self.watch.problems() if self.watch else []
        if not self.line.plc.connected:
            problems.append("PLC link down")
        if self._fill_start is not None:
            elapsed = self.clock.now() - self._fill_start
            if elapsed > self.r.hold_times.fill_duration_max_s:
                problems.append(f"fill duration {elapsed:,.0f} s exceeds {self.r.hold_times.fill_duration_max_s:,.0f} s "
                                "(Annex 1 8.18): stop the batch")
        return problems

    # ------------------------------------------------------------------------------------------------ Execute
    async def _execute(self) -> None:
        """The phases in order; an interrupted UV or tip step is repeated after the hold."""
        while True:
            await self._safe_point()
            current = self.phases.current
            try:
                if current == Phase.line_checks:
                    self.phases.advance(Phase.uv_cycle, self._facts())
                elif current == Phase.uv_cycle:
                    await self._uv_step("uv_cycle")
                elif current == Phase.tip_sterilisation:
                    await self._tip_step()
                elif current in (Phase.prime, Phase.fill):
                    if self._pump_needs_init:  # after a terminate, a pump fault or a restart
                        await self._reinit_pump()
                        self._pump_needs_init = False
                    await (self._prime() if current == Phase.prime else self._fill())
                elif current == Phase.post_fill:
                    return
                else:
                    self.machine.command(Command.Abort, actor="system", reason="no batch phase in progress")
            except SequenceRefused as exc:
                self._repeat_expired(exc)  # recorded before the hold, so the person sees what resuming will do
                await self._hold_for(f"sequence refused: {exc}")
            except (UvCycleFault, UvCycleInterrupted) as exc:
                self._write("exception", message=str(exc), phase=current.value if current else None)
                await self._hold_for(str(exc))
                if current in (Phase.uv_cycle, Phase.tip_sterilisation):
                    self.phases.repeat(current, reason=f"repeat after: {exc}")
            except DeviceFault as exc:
                self._write("exception", message=str(exc), phase=current.value if current else None)
                await self._hold_for(str(exc))
            except (PlcError, PumpError, BalanceError) as exc:
                if isinstance(exc, PumpError):
                    self._pump_needs_init = True
                self._write("exception", message=f"{type(exc).__name__}: {exc}",
                            phase=current.value if current else None)
                await self._hold_for(f"device fault: {exc}")

    def _repeat_expired(self, exc: SequenceRefused) -> None:
        """A hold time ran out: the step it protects must be repeated (Annex 1 8.18)."""
        text = " ".join(exc.reasons)
        if exc.refused_for(Reason.uv_hold_time_expired, Reason.uv_hold_time_unknown) \
                and self.phases.current in (Phase.prime, Phase.tip_sterilisation):
            self.phases.repeat(Phase.uv_cycle, reason=text)
            self._uv_end = None
        elif exc.refused_for(Reason.tips_hold_time_expired, Reason.tips_hold_time_unknown) \
                and self.phases.current == Phase.prime:
            self.phases.repeat(Phase.tip_sterilisation, reason=text)
            self._tips_done = None

    async def _hold_for(self, reason: str) -> None:
        """Hold for an internal cause and wait at the safe point for a person."""
        self._hold_cause = reason
        self.stop_reason = self.stop_reason or reason
        self.machine.request_hold("system", reason)  # no-op outside Execute/Suspended: the safe point handles those
        await self._safe_point()

    def _interrupted(self) -> str | None:
        if self.machine.state != State.Execute:
            return f"machine {self.machine.state.name}"
        if not latest(self.line.plc, "door_closed"):
            return "door open"
        return None

    async def _uv_step(self, step: str) -> None:
        uv = self.r.uv
        self._lamp_off_confirmed = False
        self._lamp_allowed = True
        try:
            result = await run_uv_exposure(
                self.line.plc, self.clock, self.rec, step=step, sensor="uv_ref_mw_cm2",  # type: ignore[arg-type]
                target_dose_mj_cm2=uv.target_dose_mj_cm2, min_irradiance_mw_cm2=uv.min_irradiance_mw_cm2,
                max_cycle_s=uv.max_cycle_s, interrupted=self._interrupted, progress=self._uv_progress,
            )
        finally:
            self._lamp_allowed = False
        self._lamp_off_confirmed = True
        self._uv[step] = result
        self._uv_end = result.end
        self.phases.advance(Phase.tip_sterilisation, self._facts())

    def _uv_progress(self, fraction: float) -> None:
        self._uv_live = fraction * self.r.uv.target_dose_mj_cm2  # shown live on the console and the OPC UA tags
        self.progress("UV cycle", fraction, 1.0)

    async def _tip_step(self) -> None:
        tips = self.r.tips
        if tips.method in ("presterilised", "uv_and_presterilised"):
            lot = self.tip_lot
            if lot is None:
                raise DeviceFault("the recipe requires a pre-sterilised tip lot and none was given")
            today = dt.datetime.fromtimestamp(self.clock.now(), dt.UTC).date().isoformat()
            if lot.expiry < today:
                raise DeviceFault(f"tip lot {lot.lot} expired on {lot.expiry}")
            self._write("tip_step", method="presterilised_lot", lot=lot.lot,
                        sterilisation_cycle_id=lot.sterilisation_cycle_id, expiry=lot.expiry)
        if tips.method in ("uv", "uv_and_presterilised"):
            uv = self.r.uv
            self._lamp_off_confirmed = False
            self._lamp_allowed = True
            try:
                result = await run_uv_exposure(
                    self.line.plc, self.clock, self.rec, step="tip_uv", sensor="uv_tip_mw_cm2",  # type: ignore[arg-type]
                    target_dose_mj_cm2=float(tips.uv_target_dose_mj_cm2 or 0.0),
                    min_irradiance_mw_cm2=uv.min_irradiance_mw_cm2, max_cycle_s=uv.max_cycle_s,
                    interrupted=self._interrupted, progress=lambda f: self.progress("tip UV", f, 1.0),
                )
            finally:
                self._lamp_allowed = False
            self._lamp_off_confirmed = True
            self._uv["tip_uv"] = result
        self._tips_done = self.clock.now()
        self.phases.advance(Phase.prime, self._facts())

    def _pulses(self, ul_s: float) -> int:
        pump = self.line.pump
        return max(5, min(6000, round(ul_s / pump.ul_per_step)))

    async def _prime(self) -> None:
        """Purge the line to waste (no vial in position), then go to fill."""
        pump, f = self.line.pump, self.r.fill
        if f.prime_volume_ul > 0:
            await self._go_home("prime to the waste tray")
            seq = self._write("intent", action="prime", volume_ul=f.prime_volume_ul)
            await self._refill(f.prime_volume_ul)
            await self.line.call(pump.set_speed, self._pulses(f.dispense_speed_ul_s))
            self._dispensing = True
            try:
                delivered = await self.line.call(pump.dispense, f.prime_volume_ul, inhibit=self._inhibit)
            except PumpError as exc:  # terminated, failed or unknown: to waste anyway; the pump is re-initialised
                self._write("outcome", action="prime", intent=seq, ok=False, error=f"{type(exc).__name__}: {exc}")
                self._pump_needs_init = True
                raise DeviceFault(f"prime did not complete: {exc}") from exc
            finally:
                self._dispensing = False
            self._write("outcome", action="prime", intent=seq, ok=True, delivered_ul=delivered)
        self.phases.advance(Phase.fill, self._facts())
        self._fill_start = self.clock.now()

    async def _refill(self, need_ul: float) -> None:
        """Aspirate from the reservoir when the syringe holds less than `need_ul`."""
        pump, f = self.line.pump, self.r.fill
        have = await self.line.call(pump.volume_in_syringe_ul)
        if have + 1e-6 >= need_ul:
            return
        room = self.line.config.dispenser.syringe_ul - have
        seq = self._write("intent", action="aspirate", volume_ul=round(room, 3))
        await self.line.call(pump.valve, "input")
        await self.line.call(pump.set_speed, self._pulses(f.aspirate_speed_ul_s))
        got = await self.line.call(pump.aspirate, room)
        await self.line.call(pump.valve, "output")
        await self.line.call(pump.set_speed, self._pulses(f.dispense_speed_ul_s))
        self._write("outcome", action="aspirate", intent=seq, ok=True, aspirated_ul=got)

    def _weigh(self, n: int) -> bool:
        plan = self.r.check_weigh
        return plan.plan == "every" or n in (1, self.planned) or n % int(plan.every_nth or 1) == 0

    async def _fill(self) -> None:
        while (n := self.history.next_vial()) <= self.planned:  # a vial not judged yet is done again from the start
            await self._safe_point()
            if self._pump_needs_init:
                await self._reinit_pump()
                self._pump_needs_init = False
            assert self._fill_start is not None
            elapsed = self.clock.now() - self._fill_start
            if elapsed > self.r.hold_times.fill_duration_max_s:
                raise DeviceFault(f"fill duration {elapsed:,.0f} s exceeds {self.r.hold_times.fill_duration_max_s:,.0f} s"
                                  " (Annex 1 8.18)")
            await self._fill_vial(n)
            self.progress("fill", n, self.planned)
        self.phases.advance(Phase.post_fill, self._facts())

    def _judge(self, n: int, status: str, reason: str = "", **data: Any) -> None:
        self._write("vial", vial=n, status=status, reason=reason, **data)
        self.history.vials[n] = VialOutcome(n, status, reason)
        if status == "accepted":
            self._consecutive_rejects = 0
        else:
            self._consecutive_rejects += 1

    async def _fill_vial(self, n: int) -> None:
        """Position, tare, dispense, check-weigh, judge one vial. A hold before the dispense leaves the vial
        unjudged, so it is positioned and tared again after the unhold."""
        plc, pump, balance, f = self.line.plc, self.line.pump, self.line.balance, self.r.fill
        if self._consecutive_rejects >= self.r.check_weigh.consecutive_rejects_hold:
            raise DeviceFault(f"{self._consecutive_rejects} consecutive vials rejected")
        seq = self._write("intent", action="position", vial=n)
        await self._move(n)
        self._write("outcome", action="position", intent=seq, ok=True, vial=n)
        weigh = self._weigh(n)
        if weigh:
            tare = await self.line.call(balance.tare)
            self._write("measurement", signal="tare", vial=n, value=tare.value, unit=tare.unit)
        await self._refill(f.fill_volume_ul)
        if self.machine.state != State.Execute:
            return  # held (or stopping) before the dispense: the vial is redone from its positioning
        seq = self._write("intent", action="dispense", vial=n, volume_ul=f.fill_volume_ul)
        self._dispensing = True
        try:
            delivered = await self.line.call(pump.dispense, f.fill_volume_ul, inhibit=self._inhibit)
        except DispenseTerminated as exc:
            self._dispensing = False
            self._write("outcome", action="dispense", intent=seq, ok=False, vial=n, delivered_ul=exc.delivered_ul,
                        error=str(exc))
            self._judge(n, "rejected", f"dispense interrupted: {self._hold_cause or exc}",
                        delivered_ul=exc.delivered_ul)
            self._pump_needs_init = True
            return
        except DispenseOutcomeUnknown as exc:
            self._write("outcome", action="dispense", intent=seq, ok=False, vial=n, unknown=True, error=str(exc))
            self._judge(n, "uncertain", f"dispense outcome unknown: {exc}")
            self._pump_needs_init = True
            raise DeviceFault(f"pump: dispense outcome unknown at vial {n}: {exc}") from exc
        except PumpError as exc:  # the pump stopped with an error mid-move: the vial got an unknown part
            self._write("outcome", action="dispense", intent=seq, ok=False, vial=n, error=f"{type(exc).__name__}: {exc}")
            self._judge(n, "rejected", f"dispense failed: {type(exc).__name__}: {exc}")
            self._pump_needs_init = True
            raise DeviceFault(f"pump fault at vial {n}: {type(exc).__name__}: {exc}") from exc
        finally:
            self._dispensing = False
        self._write("outcome", action="dispense", intent=seq, ok=True, vial=n, delivered_ul=delivered)
        if not weigh:
            self._judge(n, "accepted", "not weighed (sampling plan)", weighed=False)
            return
        try:
            reading = await self.line.call(balance.weigh_stable, 10.0)
        except (BalanceError, PlcError) as exc:  # dispensed but not checked: rejected, never dispensed again
            self._judge(n, "rejected", f"check-weigh failed: {type(exc).__name__}: {exc}", weighed=False)
            raise DeviceFault(f"balance fault at vial {n}: {type(exc).__name__}: {exc}") from exc
        expected_g = f.fill_volume_ul / 1000.0 * f.density_g_ml
        tol_g = (expected_g * f.tolerance_percent / 100.0) if f.tolerance_percent else \
            float(f.tolerance_ul or 0) / 1000.0 * f.density_g_ml
        net = float(reading.value)
        ok = abs(net - expected_g) <= tol_g
        self._judge(n, "accepted" if ok else "rejected", "" if ok else "fill weight out of tolerance", weighed=True,
                    net_g=round(net, 5), expected_g=round(expected_g, 5), tolerance_g=round(tol_g, 5),
                    volume_ul=round(net / f.density_g_ml * 1000.0, 2))

    async def _reinit_pump(self) -> None:
        """Re-initialise the pump after a terminate, a fault or a restart. What is left in the syringe may have been
        exposed during the interruption, so it goes to the waste tray (positioner home), never back into the bulk
        and never into a vial; initialising then pushes nothing out."""
        pump, f = self.line.pump, self.r.fill
        await self._go_home("empty the syringe to the waste tray before re-initialising the pump")
        seq = self._write("intent", action="empty_to_waste", reason="before re-initialisation")
        try:
            # a move may still be running (after a crash the pump went on), and this driver does not know the
            # speed the pump was left at: wait for ready, then set a known speed before moving
            slowest_stroke_s = 3000 / 5.0 + 100.0  # a full N0 stroke at the slowest top speed (5 pulses/s), margin
            await self.line.call(pump.wait_ready, slowest_stroke_s, "pump busy before re-initialisation")
            await self.line.call(pump.set_speed, self._pulses(f.dispense_speed_ul_s))
            await self.line.call(pump.valve, "output")
            await self.line.call(pump.move_absolute, 0)
            self._write("outcome", action="empty_to_waste", intent=seq, ok=True)
        except PumpError as exc:  # e.g. plunger overload: nothing moves until initialised; we are over waste
            self._write("outcome", action="empty_to_waste", intent=seq, ok=False, error=str(exc))
        seq = self._write("intent", action="initialise_pump", reason="after terminate, fault or restart")
        try:
            await self.line.call(pump.initialise, 0 if self.line.config.dispenser.syringe_ul > 500 else 1)
            await self.line.call(pump.valve, "output")
            self._write("outcome", action="initialise_pump", intent=seq, ok=True)
        except PumpError as exc:
            self._write("outcome", action="initialise_pump", intent=seq, ok=False, error=str(exc))
            raise DeviceFault(f"pump re-initialisation failed: {exc}") from exc

    # --------------------------------------------------------------------------------------------- Completing
    async def _completing(self) -> None:
        """Post-fill monitoring window (the 'immediately after'), reconciliation, disposition proposal."""
        await self._safe_point_completing()
        window = self.r.environment.post_fill_monitoring_s
        self._write("post_fill_monitoring", event="start", window_s=window)
        end = self.clock.now() + window
        while self.clock.now() < end:
            self.progress("post-fill monitoring", window - (end - self.clock.now()), window)
            await self.clock.asleep(min(5.0, max(0.0, end - self.clock.now())))
            if self.machine.state in (State.Stopping, State.Aborting):
                await self._safe_point()
        self.progress("post-fill monitoring", window, window)
        self._write("post_fill_monitoring", event="end")
        if self.phases.current == Phase.post_fill:
            self.phases.finish()
        assert self.batch_id is not None
        self.history = BatchHistory.from_entries(self.store.entries(self.batch_id))
        accepted = [v.vial for v in self.history.vials.values() if v.status == "accepted"]
        kept = retained.record(accepted, self.r.retained_samples)  # retained samples (recipe's sampling plan)
        if kept["planned"]:
            self._write("retained_sample", **kept)
        disp = decide(self.history, self.planned, "Complete", samples=kept["count"])
        self._write("reconciliation", **disp.reconciliation)
        self._write("disposition", **disp.as_record())
        self.machine.state_complete(State.Completing, reason="post-fill monitoring done")

    async def _safe_point_completing(self) -> None:
        if self.machine.state in (State.Stopping, State.Aborting):
            await self._safe_point()
        if self.machine.state == State.Execute:  # the normal end: Execute's work is done
            self.machine.state_complete(State.Execute, reason="all vials processed")


async def _logged(future: "asyncio.Future[Any]", what: str) -> None:
    """Await a safety action and log (never raise) its failure."""
    try:
        await future
    except Exception as exc:  # noqa: BLE001 - a safety action reports, it does not stop the others
        log.error("batch.safety_action_failed", action=what, error=str(exc))


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")
