"""Helpers for the end-to-end tests: wait on the controller in real time, pick entries out of a record."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable


async def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
                   task: "asyncio.Task[Any] | None" = None) -> Any:
    """Poll `predicate` (real seconds); the simulator runs fast, so this is short. If `task` (the batch) ends
    first, its result or exception is the failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if task is not None and task.done():
            raise AssertionError(f"the batch ended before {what}: {task.result()!r}")
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def kinds(entries: list[Any], kind: str, /, **match: Any) -> list[Any]:
    """Entries of `kind` whose data contain every `match` item."""
    return [e for e in entries if e.kind == kind and all(e.data.get(k) == v for k, v in match.items())]
