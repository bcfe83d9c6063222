"""The one place where the command line turns an exception into a one-line message and an exit code (rule 5):
0 ok, 1 failed or refused, 2 usage (typer's own), 128 + N after signal N. Never a traceback for user input.

Every command of fillfinish/cli.py and its modules runs its work through `run` (a coroutine) or `reported` (plain
code); an exception not in the table is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from typing import Any, Coroutine, Iterator, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

T = TypeVar("T")
out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line however long


def _table() -> list[tuple[tuple[type[BaseException], ...], str, str]]:
    """(exception types, label, colour) in the order they are matched; imported late (heavy modules)."""
    from fillfinish.batch.recorder import RecordFailure
    from fillfinish.batch.recovery import NothingToRecover
    from fillfinish.errors import UserError
    from fillfinish.hmi.client import LoginRefused, RequestRejected
    from fillfinish.lock import RecordBusy
    from fillfinish.machine.packml import CommandRefused, MachineError
    from fillfinish.password_input import PasswordInputError
    from fillfinish.record.store import RecordError
    from fillfinish.shutdown import ShutdownBySignal
    from hal.balance.errors import BalanceError
    from hal.dispenser.errors import PumpError
    from hal.plc.errors import PlcError
    from hal.plc.guard import LineClaimed
    from hal.transport.errors import LinkError

    return [
        ((UserError, RecordBusy, PasswordInputError), "error:", "red"),
        ((ShutdownBySignal,), "stopped:", "yellow"),
        ((LineClaimed, CommandRefused, RequestRejected, LoginRefused), "refused:", "red"),
        ((RecordError, RecordFailure), "record:", "red"),
        ((PlcError, PumpError, BalanceError, LinkError, OSError, ConnectionError, asyncio.TimeoutError), "device:",
         "red"),
        ((MachineError, NothingToRecover, ValueError), "refused:", "red"),
    ]


def describe(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, one-line rich message) for an exception a person may cause, or None for a bug."""
    if isinstance(exc, KeyboardInterrupt):
        return 1, "[yellow]interrupted"
    for types, label, colour in _table():
        if isinstance(exc, types):
            text = escape(str(exc))
            if label == "device:":
                text = f"{type(exc).__name__}: {text}"
            return int(getattr(exc, "exit_code", 1)), f"[{colour}]{label}[/] {text}"
    return None


@contextmanager
def reported() -> Iterator[None]:
    """Run the block; an exception a person may cause becomes its message on stderr and typer.Exit(code)."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # typer's own: exit codes and usage errors (2)
    except (Exception, KeyboardInterrupt) as exc:
        mapped = describe(exc)
        if mapped is None:
            raise
        code, message = mapped
        err.print(message)
        raise typer.Exit(code) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine to its end under `reported`."""
    with reported():
        return asyncio.run(coro)
