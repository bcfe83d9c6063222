"""Glue for one controller session: site config -> clock, record, line -> BatchController; shared by run and demo."""

from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from fillfinish.batch.controller import BatchController, ProgressFn
from fillfinish.clock import Clock
from fillfinish.config import SiteConfig
from fillfinish.line import Line
from fillfinish.line_safety import record_plc_alarm
from fillfinish.recipes.loader import LoadedRecipe
from fillfinish.record.store import RecordStore
from hal.transport.tasks import cancel_and_wait, run_in_own_thread
from hal.transport.wirelog import WireLog


async def _end_run(controller: BatchController) -> None:
    """Cancel a batch run still going when its session ends (the caller failed or left early): the run's own
    cancellation path terminates the dispense and switches the lamp off while the devices are still open."""
    task = controller.run_task
    if task is not None and not task.done():
        await cancel_and_wait([task])


def _close_record(controller: BatchController) -> None:
    """Wait for the run's record writer to commit every queued entry, then end it (blocks: teardown only)."""
    if controller.rec is not None:
        controller.rec.close()


@asynccontextmanager
async def controller_session(
    config: SiteConfig,
    recipe: LoadedRecipe,
    *,
    database_url: str | None = None,
    progress: ProgressFn | None = None,
    wire_log_path: Path | None = None,
    serve_port: int | None = None,
    batch_id: str | None = None,
    what: str = "fillfinish run",
) -> AsyncIterator[BatchController]:
    """Open the record and the line, yield a BatchController (with its OPC UA server if serve_port is given)."""
    clock = Clock(config.clock.speed, config.clock.epoch, config.clock.timeline)
    async with AsyncExitStack() as stack:  # whatever opened is closed, in reverse order, even if a later part fails
        store = RecordStore(database_url or config.database.url, now=clock.now, key_file=config.record.key_file,
                            line_id=config.record.line_id)
        stack.push_async_callback(run_in_own_thread, store.close, "record-close")  # even if the teardown is cancelled
        wire_log = WireLog(wire_log_path, now=clock.now) if wire_log_path else WireLog(now=clock.now)
        stack.callback(wire_log.close)
        line = Line(config, wire_log=wire_log, what=what)
        stack.push_async_callback(line.close)
        controller = BatchController(line=line, store=store, clock=clock, recipe=recipe, site=config, progress=progress)
        stack.callback(_close_record, controller)  # before the store closes: every queued entry is committed
        stack.push_async_callback(_end_run, controller)  # before the line and the record close under a live run
        if serve_port is not None:  # before the claim: building its address space blocks the loop for a while
            from fillfinish.people.users import UserStore
            from fillfinish.server import ControllerServer, ServerSecurity

            sec = config.security
            security = ServerSecurity(pki_dir=sec.pki_dir, users=UserStore(store, rules=sec.passwords), store=store,
                                      allow_anonymous_read=sec.allow_anonymous_read)
            server = ControllerServer(controller, port=serve_port, security=security)
            await server.start()
            stack.push_async_callback(server.stop)
            controller.endpoint = server.endpoint  # type: ignore[attr-defined]
        await line.open()  # claims the line on the PLC first: a second controller is refused before any command
        await record_plc_alarm(store, line, batch_id)  # a watchdog trip while no controller ran
        yield controller
