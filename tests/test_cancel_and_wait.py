"""`cancel_and_wait` ends a task even when a cancel is swallowed (as asyncio.wait_for can on Python 3.11)."""

from __future__ import annotations

import asyncio

from hal.transport.tasks import cancel_and_wait


async def test_a_task_that_swallows_a_cancel_is_cancelled_again_until_it_ends() -> None:
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed.is_set():
                    raise
                swallowed.set()  # the first cancel is lost, the loop goes on

    async def failing() -> None:
        raise RuntimeError("boom")  # its exception is retrieved, not reported at garbage collection

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(failing())]
    await asyncio.sleep(0)
    await cancel_and_wait(tasks, retry_s=0.01)
    assert swallowed.is_set() and all(t.done() for t in tasks)
    assert tasks[0].cancelled() and isinstance(tasks[1].exception(), RuntimeError)
