"""Helpers for the end-to-end tests: wait on the controller, fail at once with the cause, pick entries out of a record."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from hal.transport.tasks import cancel_and_wait

STOPPED_STATES = {"Held", "Aborted", "Complete", "Suspended"}
"""States a batch can settle in while a test waits for something else: waiting on would only hide the cause (Stopped
is also where a controller starts: a batch that ends Stopped is seen by its task ending)."""
ENDED_STATES = ("Aborted", "Complete", "Stopped")
"""States in which a batch's run ends (its task returns)."""
HANG_GUARD_S = 120.0
"""Real seconds after which a wait gives up: only a guard against a live-lock, never a bound on how fast anything is."""
SETTLE_GRACE_S = 2.0
"""Real seconds a wait still gives its condition once the batch has settled (a record write may finish after the state
changed); only delays a failure, never makes one."""

MOVE_STEP_S = 1.0
"""Simulated seconds a `wait_for(..., moving=clock)` poll moves the shared timeline (at most 100 per real second)."""


def batch_cause(controller: Any) -> str:
    """The controller's state, stop reason and alarms, for a failure message."""
    state = getattr(getattr(controller, "machine", None), "state", None)
    name = getattr(state, "name", str(state))
    alarms = "; ".join(f"{a.source}: {a.message}" for a in getattr(controller, "alarms", [])) or "none"
    return (f"state {name}, stop reason {getattr(controller, 'stop_reason', '') or 'none'!r}, alarms: {alarms}, "
            f"last state entries: {_last_states(controller)}, last pump exchanges: {_pump_wire_tail(controller)}")


def _pump_wire_tail(controller: Any, n: int = 8) -> str:
    """The controller's last `n` pump wire events (direction and text; t is the shared clock's simulated time), so a
    pump that did not answer shows whether the request went out and what came back (stress run s8's silence)."""
    log = getattr(getattr(controller, "line", None), "wire_log", None)
    if log is None:
        return "(no wire log)"
    events = [e for e in list(log.events) if e.device == "pump"][-n:]
    def text(data: str) -> str:
        try:
            return bytes.fromhex(data).decode("ascii", "backslashreplace")
        except ValueError:
            return data
    return " | ".join(f"{e.t:.3f} {e.dir} {text(e.data)!r}" for e in events) or "(none)"


def _last_states(controller: Any, n: int = 3) -> str:
    """The batch's last `n` state changes from its record (trigger, target and reason), or why they are not known."""
    try:
        entries = controller.store.entries(controller.batch_id)
    except Exception as exc:  # noqa: BLE001 - only for a failure message
        return f"(record not readable: {exc})"
    states = [e for e in entries if e.kind == "state"][-n:]
    return "; ".join(f"{e.data.get('trigger')}->{e.data.get('to')} ({e.data.get('reason') or '-'})" for e in states)


def start_batch(controller: Any, **run: Any) -> "asyncio.Task[Any]":
    """`controller.run_new(**run)` as a task that knows its controller, so `wait_for(..., task=task)` and `finish`
    fail at once with the stop reason when the batch goes Held or ends early."""
    task = asyncio.create_task(controller.run_new(**run))
    task.controller = controller  # type: ignore[attr-defined]
    return task


def _state_name(controller: Any) -> str:
    state = controller.machine.state
    return getattr(state, "name", str(state))


async def wait_for(predicate: Callable[[], Any], timeout: float = HANG_GUARD_S, what: str = "condition",
                   task: "asyncio.Task[Any] | None" = None, controller: Any = None,
                   allow: tuple[str, ...] = (), moving: Any = None) -> Any:
    """Poll `predicate` until it holds and return its value.

    Fails at once, naming the cause, when the batch `task` ends first, or when `controller` (or the task's, see
    `start_batch`) settles in a state (Held, Aborted, Complete, Suspended) not listed in `allow` while the
    predicate is still false: on a busy machine a stalled batch goes Held in simulated time, and the stop reason is
    the useful failure, not a time-out. `timeout` (real seconds) is only the last resort for a live-lock.
    `moving` (a simulator clock): the test waits on the machine, so each poll moves simulated time by MOVE_STEP_S. On
    the shared timeline nothing else moves it while the line is Held (the controller then waits only for a person),
    so a test waiting for the machine to change with time (air recovering, an outage ending) must say so.
    """
    if controller is None and task is not None:
        controller = getattr(task, "controller", None)
    deadline = time.monotonic() + timeout
    settled_at: float | None = None
    while True:
        value = predicate()
        if value:
            return value
        if task is not None and task.done():
            cause = f" ({batch_cause(controller)})" if controller is not None else ""
            raise AssertionError(f"the batch ended before {what}: {_task_end(task)}{cause}")
        if controller is not None and _state_name(controller) in STOPPED_STATES - set(allow):
            settled_at = settled_at if settled_at is not None else time.monotonic()
            if time.monotonic() - settled_at >= SETTLE_GRACE_S:
                await _stop(task)
                raise AssertionError(f"the batch settled before {what}: {batch_cause(controller)}")
        else:
            settled_at = None
        if time.monotonic() >= deadline:
            await _stop(task)
            cause = f": {batch_cause(controller)}" if controller is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s (hang guard) waiting for {what}{cause}")
        if moving is not None:
            await moving.asleep(MOVE_STEP_S)
        await asyncio.sleep(0.01)


async def _stop(task: "asyncio.Task[Any] | None") -> None:
    """Cancel a batch run that a failing wait leaves behind, so it cannot leak into the next test."""
    if task is None or task.done():
        return
    await cancel_and_wait([task])


async def finish(task: "asyncio.Task[Any]", controller: Any = None, allow: tuple[str, ...] = ()) -> Any:
    """The batch's outcome once its task ends; fails at once with the stop reason if the batch settles Held or
    Suspended (not in `allow`) instead of ending."""
    controller = controller if controller is not None else getattr(task, "controller", None)
    try:
        await wait_for(task.done, what="the end of the batch", controller=controller, allow=ENDED_STATES + allow)
    except AssertionError:
        await _stop(task)  # a run left going would keep the devices and hang the session's close
        raise
    return task.result()


async def stays(predicate: Callable[[], Any], clock: Any, sim_seconds: float, what: str = "condition") -> None:
    """Assert that `predicate` holds throughout `sim_seconds` of simulated time on `clock` (e.g. nothing resumes by
    itself while Held). On a simulator timeline the wait moves simulated time; it never bounds real time."""
    until = clock.now() + sim_seconds
    while clock.now() < until:
        assert predicate(), f"{what} stopped holding"
        await clock.asleep(min(1.0, until - clock.now()))
    assert predicate(), f"{what} stopped holding"


def _task_end(task: "asyncio.Task[Any]") -> str:
    """A finished task's result or exception, for a failure message."""
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return f"raised {exc!r}" if exc is not None else repr(task.result())


async def record_of(controller: Any) -> list[Any]:
    """The batch's entries once every entry the controller queued so far is committed (state changes, alarms and
    samples are posted to the record's writer thread, so a plain read right after a state change may miss them)."""
    await controller.recorder.committed()
    return controller.store.entries(controller.batch_id)


def kinds(entries: list[Any], kind: str, /, **match: Any) -> list[Any]:
    """Entries of `kind` whose data contain every `match` item."""
    return [e for e in entries if e.kind == kind and all(e.data.get(k) == v for k, v in match.items())]
