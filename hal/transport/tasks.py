"""Cancelling background tasks so that they really end, and clean-up that a cancel cannot cut short.

On Python 3.11 a cancel that lands while `asyncio.wait_for` (used inside asyncua for every request) completes can be
swallowed: a loop like a heartbeat or a poller then runs on, and a plain `gather` after `cancel()` waits for ever,
so closing a session hangs. `cancel_and_wait` cancels again until every task has ended.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

RETRY_S = 0.5  # real seconds between cancels of a task that did not end yet


async def cancel_and_wait(tasks: Iterable["asyncio.Task[Any]"], retry_s: float = RETRY_S) -> None:
    """Cancel `tasks` and return once every one has ended (cancelled, failed or finished), cancelling again each
    `retry_s`; their exceptions are retrieved (a closing session reports none of them)."""
    pending = {t for t in tasks if t is not asyncio.current_task()}
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=retry_s)
        for task in done:
            if not task.cancelled():
                task.exception()


def run_in_own_thread(fn: Callable[[], T], name: str) -> "asyncio.Future[T]":
    """Start `fn` in a new thread now and return a future of the running loop with its result (or its exception).
    For work that must be done even when the task waiting for it is cancelled (a safety action, a port's close): a
    cancel ends the wait, never `fn`. (`asyncio.to_thread` and `run_in_executor` drop work whose wait is cancelled
    before a worker thread picks it up, and queue it behind the executor's other jobs.)"""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(result)
        else:
            done.set_exception(error)

    def run() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiter
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the event loop has ended meanwhile: nobody waits any more
            pass

    threading.Thread(target=run, name=name, daemon=True).start()
    return done
