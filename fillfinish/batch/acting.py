"""The PackML acting states around Execute: Resetting (devices identified, pump initialised over the waste),
Starting (line checks), the safe point between steps (Holding, Unholding, Suspending, Stopping, Aborting) and
Completing (post-fill monitoring, reconciliation, disposition proposal)."""

from __future__ import annotations

import asyncio

from typing import TYPE_CHECKING

from fillfinish.batch.disposition import decide
from fillfinish.batch.faults import BatchEnded, CompleteRequested
from fillfinish.batch.history import BatchHistory
from fillfinish.record.entry_stream import iter_entries
from fillfinish.batch.line_checks import line_checks
from fillfinish.batch.recorder import RecordFailure
from fillfinish.batch.steps.pump_care import go_home
from fillfinish.machine.packml import Command, State
from fillfinish.machine.phases import Phase
from fillfinish.quality import retained
from hal.balance.errors import BalanceError
from hal.dispenser.errors import PumpError
from hal.plc.errors import PlcError

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController

_PASS_THROUGH = {
    State.Suspending: "suspended at a safe point",  # external cause (e.g. starved of vials): wait, no alarm
    State.Unsuspending: "unsuspended",
}


async def safe_point(c: BatchController) -> None:
    """Between steps: act on Hold / Stop / Abort; return only in Execute."""
    while True:
        if c.fatal is not None:
            raise RecordFailure(str(c.fatal))
        if c.live.stop_signal is not None:  # the signal's cancel, should the run not have seen it
            raise asyncio.CancelledError(c.live.stop_signal)
        state = c.machine.state
        problems = (c.monitor.problems() if c.monitor else []) + (c.watch.problems() if c.watch else [])
        if problems and state in (State.Execute, State.Suspended):  # an interlock still in force holds again
            if c.safe.pending or c.safe.queued:  # its alarm first: recorded (with its own Hold) before this one
                await c.safe.settled()
            if c.machine.state in (State.Execute, State.Suspended):
                c.live.inhibit.set()
                c.live.hold_cause = problems[0]
                c.machine.request_hold("monitor", "; ".join(problems))
            continue
        if state == State.Execute:
            return
        if state == State.Holding:
            c.progress("held", 0, 0)
            c.machine.state_complete(State.Holding, reason=c.live.hold_cause or "hold")
        elif state == State.Unholding:
            c.live.hold_cause = None
            if not problems:
                c.live.inhibit.clear()
            c.live.consecutive_rejects = 0
            c.machine.state_complete(State.Unholding, reason="interlocks re-checked by the unhold")
        elif state in _PASS_THROUGH:
            c.machine.state_complete(state, reason=_PASS_THROUGH[state])
        elif state == State.Completing:
            raise CompleteRequested()
        elif state in (State.Stopping, State.Aborting):
            await c.safe.lamp_off(state.name, confirm=True, dispensing=c.live.dispensing)
            c.machine.state_complete(state)
            raise BatchEnded(state.name)
        elif state in (State.Stopped, State.Aborted):
            raise BatchEnded(state.name)
        else:
            c.wake.clear()
            await c.wake.wait()


async def hold_for(c: BatchController, reason: str) -> None:
    """Hold for an internal cause and wait at the safe point for a person."""
    c.live.hold_cause = reason
    c.stop_reason = c.stop_reason or reason
    c.machine.request_hold("system", reason)  # no-op outside Execute/Suspended: the safe point handles those
    await safe_point(c)


async def resetting(c: BatchController) -> None:
    """Resetting: tip over the waste tray, initialise the pump, identify every device."""
    try:
        await go_home(c, "initialise the pump over the waste tray")
    except PlcError as exc:
        c.machine.command(Command.Stop, actor="system", reason=f"vial positioner cannot go home: {exc}")
        await safe_point(c)
        return
    try:
        async with c.recorder.action("initialise_pump") as act:
            act.result(pump_firmware=await c.line.call(c.pump.identity))
            await c.line.call(c.pump.reinitialise)
            act.result(balance_serial=await c.line.call(c.balance.identity))
    except (PumpError, BalanceError) as exc:
        c.machine.command(Command.Stop, actor="system", reason=f"device check failed: {exc}")
        await safe_point(c)
        return
    c.machine.state_complete(State.Resetting)


async def starting(c: BatchController) -> None:
    """Starting: the line checks of the domain brief; any failure stops the batch before it begins."""
    c.phases.advance(Phase.line_checks, c.facts())
    try:
        problems = await line_checks(c)
    except (PlcError, PumpError, BalanceError) as exc:
        await c.recorder.awrite("line_check", check="devices", ok=False, detail=f"{type(exc).__name__}: {exc}")
        problems = [f"devices: {exc}"]
    if problems:
        c.stop_reason = "; ".join(problems)
        c.machine.command(Command.Stop, actor="system", reason=f"line checks failed: {c.stop_reason}")
        await safe_point(c)
        return
    c.live.line_checks_ok = True
    c.machine.state_complete(State.Starting)


async def completing(c: BatchController) -> None:
    """Post-fill monitoring window (the 'immediately after'), reconciliation, disposition proposal."""
    if c.machine.state in (State.Stopping, State.Aborting):
        await safe_point(c)
    if c.machine.state == State.Execute:  # the normal end: Execute's work is done
        c.machine.state_complete(State.Execute, reason="all vials processed")
    await _post_fill_monitoring(c)
    if c.phases.current == Phase.post_fill:
        c.phases.finish()
    assert c.batch_id is not None
    await c.recorder.committed()  # the history reads every entry written so far
    c.history = BatchHistory.from_entries(iter_entries(c.store, c.batch_id))
    accepted = [v.vial for v in c.history.vials.values() if v.status == "accepted"]
    kept = retained.record(accepted, c.r.retained_samples)  # retained samples (recipe's sampling plan)
    if kept["planned"]:
        await c.recorder.awrite("retained_sample", **kept)
    disp = decide(c.history, c.planned, "Complete", samples=kept["count"])
    await c.recorder.awrite("reconciliation", **disp.reconciliation)
    await c.recorder.awrite("disposition", **disp.as_record())
    c.machine.state_complete(State.Completing, reason="post-fill monitoring done")


async def _post_fill_monitoring(c: BatchController) -> None:
    """The recipe's monitoring window after the last vial, on the shared clock; Stop/Abort still act."""
    window = c.r.environment.post_fill_monitoring_s
    await c.recorder.awrite("post_fill_monitoring", event="start", window_s=window)
    end = c.clock.now() + window
    while c.clock.now() < end:
        c.progress("post-fill monitoring", window - (end - c.clock.now()), window)
        await c.clock.asleep(min(5.0, max(0.0, end - c.clock.now())))
        if c.machine.state in (State.Stopping, State.Aborting):
            await safe_point(c)
    c.progress("post-fill monitoring", window, window)
    await c.recorder.awrite("post_fill_monitoring", event="end")
