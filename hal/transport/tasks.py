"""Cancelling background tasks so that they really end.

On Python 3.11 a cancel that lands while `asyncio.wait_for` (used inside asyncua for every request) completes can be
swallowed: a loop like a heartbeat or a poller then runs on, and a plain `gather` after `cancel()` waits for ever,
so closing a session hangs. `cancel_and_wait` cancels again until every task has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

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
