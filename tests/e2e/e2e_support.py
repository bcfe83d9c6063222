"""Helpers for the end-to-end tests: wait on the controller, fail at once with the cause, pick entries out of a record."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

STOPPED_STATES = {"Held", "Aborted", "Complete", "Suspended"}
"""States a batch can settle in while a test waits for something else: waiting on would only hide the cause."""


def batch_cause(controller: Any) -> str:
    """The controller's state, stop reason and alarms, for a failure message."""
    state = getattr(getattr(controller, "machine", None), "state", None)
    name = getattr(state, "name", str(state))
    alarms = "; ".join(f"{a.source}: {a.message}" for a in getattr(controller, "alarms", [])) or "none"
    return f"state {name}, stop reason {getattr(controller, 'stop_reason', '') or 'none'!r}, alarms: {alarms}"


async def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
                   task: "asyncio.Task[Any] | None" = None, controller: Any = None,
                   allow: tuple[str, ...] = ()) -> Any:
    """Poll `predicate` until it holds and return its value.

    Fails at once, naming the cause, when the batch `task` ends first, or when `controller` settles in a state
    (Held, Aborted, Complete, Suspended) not listed in `allow` while the predicate is still false: on a busy
    machine a stalled batch goes Held in simulated time, and the stop reason is the useful failure, not a time-out.
    `timeout` (real seconds) is only the last resort for a live-lock.
    """
    if controller is None and task is not None:
        controller = getattr(task, "controller", None)
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if task is not None and task.done():
            cause = f" ({batch_cause(controller)})" if controller is not None else ""
            raise AssertionError(f"the batch ended before {what}: {task.result()!r}{cause}")
        if controller is not None:
            state = getattr(controller.machine.state, "name", str(controller.machine.state))
            if state in STOPPED_STATES and state not in allow:
                await asyncio.sleep(0.05)  # a state change and the awaited value may land in the same tick
                if not predicate():
                    raise AssertionError(f"the batch settled before {what}: {batch_cause(controller)}")
                continue
        if time.monotonic() >= deadline:
            cause = f": {batch_cause(controller)}" if controller is not None else ""
            raise AssertionError(f"timed out waiting for {what}{cause}")
        await asyncio.sleep(0.01)


def kinds(entries: list[Any], kind: str, /, **match: Any) -> list[Any]:
    """Entries of `kind` whose data contain every `match` item."""
    return [e for e in entries if e.kind == kind and all(e.data.get(k) == v for k, v in match.items())]
