"""The safe state, owned by one component: dispense terminated, lamp off, positioner stopped, each recorded one way
(a `safe_state` entry: action, reason, ok/error where known, where it happened).

Speed first: `terminate_now` hands the pump's T to a worker thread before anything else happens (no record write, no
log line before it), and the record writes that follow wait (`after_safety`) until every safety action in flight has
been answered, so a synchronous commit in the event loop never delays a T or a lamp-off request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from fillfinish.batch.recorder import BatchRecorder, RecordFailure
from fillfinish.batch.run_state import RunState
from hal.dispenser.base import Dispenser
from hal.plc.base import Plc
from hal.transport.tasks import run_in_own_thread

log = structlog.get_logger("fillfinish.batch")

MoveFn = Callable[[int, float], Awaitable[None]]  # move(position, timeout_s): the controller's positioner move


class SafeState:
    """Dispense terminate, lamp off and positioner stop for one run; `pending` counts safety actions not yet
    answered (monitor record writes wait for zero)."""

    def __init__(self, *, pump: Callable[[], Dispenser], plc: Plc, live: RunState,
                 recorder: Callable[[], BatchRecorder | None], on_record_failure: Callable[[BaseException], None],
                 move: MoveFn) -> None:
        self._pump, self._plc, self._live = pump, plc, live
        self._recorder, self._on_record_failure, self._move = recorder, on_record_failure, move
        self.pending = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queued: list[tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]] = []

    # -------------------------------------------------------------------------- at once, from the event loop
    def stop_dispensing(self, why: str) -> None:
        """No dispense may start any more; a running one is terminated at once."""
        self._live.inhibit.set()
        if self._live.dispensing:
            self.terminate_now(why)

    def terminate_now(self, why: str) -> None:
        """The pump's T, sent from a thread of its own started right now (never queued behind other worker-thread
        jobs, and sent even if the run is cancelled before it is answered); recorded once it has been answered."""
        future = run_in_own_thread(self._pump().terminate, "pump-terminate")
        self.pending += 1
        self.spawn(self._terminated(future, why))
        log.warning("batch.terminate_dispense", reason=why)  # after the T has left for its worker thread

    async def _terminated(self, future: "asyncio.Future[Any]", why: str) -> None:
        """T answered (or failed): safety writes may run again; the terminate goes in the record once every other
        safety action in flight has been answered too (a task of this run: `drain` waits for it)."""
        error = None
        try:
            await future
        except Exception as exc:  # noqa: BLE001 - a safety action reports, never raises
            error = f"{type(exc).__name__}: {exc}"
            log.error("batch.safety_action_failed", action="terminate", error=error)
        finally:
            self.pending -= 1
        for _ in range(2000):  # the other safety actions in flight: answered in ms; never wait on them for long
            if self.pending <= 0:
                break
            await asyncio.sleep(0.0005)
        self.record("terminate", why, ok=error is None, error=error, dispensing=True)

    def lamp_off_soon(self, why: str, then: Callable[[], None] | None = None) -> None:
        """Lamp off in a task started now; `then` (e.g. the alarm's record) runs once the PLC has answered."""
        self.pending += 1  # record writes wait until the lamp-off write has been answered
        self.spawn(self.lamp_off(why, then=then, counted=True))

    def positioner_stop_soon(self, why: str) -> None:
        """Stop the positioner in a task started now."""
        self.spawn(self.stop_positioner(why))

    def after_safety(self, write: Callable[..., None], *args: Any, **kw: Any) -> None:
        """Run a record write now, or (in order) once the safety actions in flight have been answered."""
        if self.pending <= 0 and not self._queued:
            write(*args, **kw)
            return
        self._queued.append((write, args, kw))
        if len(self._queued) == 1:
            asyncio.get_running_loop().call_later(0.0005, self._flush_when_quiet)

    def _flush_when_quiet(self) -> None:
        """Write the queued entries once nothing is pending; look again shortly otherwise."""
        if self.pending > 0:
            asyncio.get_running_loop().call_later(0.0005, self._flush_when_quiet)
            return
        self.flush()

    @property
    def queued(self) -> bool:
        """True while record writes wait for safety actions."""
        return bool(self._queued)

    def flush(self) -> None:
        """Write every queued entry, in order."""
        while self._queued:
            write, args, kw = self._queued.pop(0)
            write(*args, **kw)

    async def settled(self) -> None:
        """Wait (briefly) for the safety actions in flight, then write what waited for them: the safe point calls
        this before it acts on an interlock, so the alarm and its deviation are in the record before the Hold."""
        for _ in range(2000):
            if self.pending <= 0:
                break
            await asyncio.sleep(0.0005)
        self.flush()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """A safety task of this run (awaited by `drain`)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every safety task of this run (each logs its own failure)."""
        for task in list(self._tasks):
            try:
                await task
            except Exception:  # noqa: BLE001 - safety tasks log their own failures
                pass

    # -------------------------------------------------------------------------------------------- awaited
    async def terminate(self, why: str) -> None:
        """Inhibit and terminate, awaited (the run is being torn down: the T is sent from a thread of its own, so a
        cancel of the tear-down ends the wait, never the terminate)."""
        self._live.inhibit.set()
        try:
            await run_in_own_thread(self._pump().terminate, "pump-terminate")
        except Exception as exc:  # noqa: BLE001 - a safety action reports, never raises
            log.error("batch.terminate_failed", error=str(exc))
            self.record("terminate", why, ok=False, error=str(exc), dispensing=self._live.dispensing)

    async def lamp_off(self, why: str, *, confirm: bool = False, then: Callable[[], None] | None = None,
                       counted: bool = False, **where: Any) -> bool:
        """Command the lamp off (with `confirm`, read its feedback and say whether it is off); record it with
        `where` (step, cycle_id, dispensing). True when commanded (and confirmed, if asked); never raises."""
        error: str | None = None
        ok: bool | None = None
        try:
            await self._plc.set_lamp(False)
            if confirm:
                ok = not await self._plc.read("lamp_on")
                self._live.lamp_off_confirmed = ok
        except Exception as exc:  # noqa: BLE001 - a safety action reports, never raises
            error, ok = f"{type(exc).__name__}: {exc}", False
            log.error("batch.lamp_off_failed", error=str(exc))
        finally:
            if counted:
                self.pending -= 1
        if then is not None:
            then()
        self.record("lamp_off", why, ok=ok, error=error, **where)
        return error is None and ok is not False

    async def stop_positioner(self, why: str) -> None:
        """Stop the positioner where it is: a move to its current position replaces any move under way."""
        try:
            current = int(await self._plc.read("positioner_current"))
            await self._move(current, 5.0)
        except Exception as exc:  # noqa: BLE001 - a safety action reports, never raises
            log.error("batch.positioner_stop_failed", error=str(exc))
            self.record("positioner_stop", why, ok=False, error=f"{type(exc).__name__}: {exc}")
            return
        self.record("positioner_stop", why, position=current)

    # -------------------------------------------------------------------------------------------- the record
    def record(self, action: str, reason: str, **fields: Any) -> None:
        """The one `safe_state` entry shape; skipped once the record has failed (the safe state still happened)."""
        rec = self._recorder()
        if rec is None or rec.failed:
            return
        try:
            rec.post("safe_state", "system", action=action, reason=reason,
                      **{k: v for k, v in fields.items() if v is not None})
        except RecordFailure as exc:
            self._on_record_failure(exc)
