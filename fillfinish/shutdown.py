"""SIGTERM / SIGINT for a running controller: the line goes to its safe state, the record says why, the batch is left
Held (Stopped with a disposition before Execute), and the process exits non-zero; a second signal exits at once.

systemd, `kill` and `timeout` send SIGTERM, Ctrl-C sends SIGINT. The first one makes the controller act at once
(dispense terminated, lamp off, positioner stopped), records a `shutdown` entry, sets the run's stop flag and cancels
the run (should Python 3.11 swallow that cancel inside `asyncio.wait_for`, the flag ends the run at its next safe
point); the caller then brings the batch to its resting state from the record (fillfinish/batch/recovery.py with the
signal as the cause).
A second signal while that runs leaves with os._exit: the PLC's watchdog makes the line safe without us.
"""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import contextmanager
from typing import Any, Iterator

import structlog

log = structlog.get_logger("fillfinish.shutdown")
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ShutdownBySignal(Exception):
    """The run ended because the process was asked to stop; `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum


class SignalShutdown:
    """Installs the handlers on the running loop; `signum` is set once a signal arrived."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.controller: Any = None  # the BatchController to make safe, once there is one
        self._task: asyncio.Task[Any] | None = None

    def _handle(self, signum: int) -> None:
        """First signal: safe actions, record, cancel the run; a second one: leave at once."""
        if self.signum is not None:  # second signal: leave now, the PLC watchdog takes over
            os._exit(128 + signum)
        self.signum = signum
        why = f"{signal.Signals(signum).name} received: controller stopping"
        log.warning("shutdown.signal", signal=signal.Signals(signum).name)
        if self.controller is not None:
            try:
                self.controller.shutdown_now(why)
            except Exception as exc:  # noqa: BLE001 - the cancel below must still happen
                log.error("shutdown.safe_state_failed", error=str(exc))
        if self._task is not None:
            self._task.cancel(why)

    @contextmanager
    def installed(self) -> Iterator["SignalShutdown"]:
        """Handle SIGTERM and SIGINT on the running loop by cancelling the current task (after the safe actions)."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self._handle, sig)
        try:
            yield self
        finally:
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)
            if self.signum is not None:  # keep the second-signal rule while the caller records the outcome
                for sig in SIGNALS:
                    signal.signal(sig, lambda s, _f: os._exit(128 + s))
