"""`fillfinish command` authenticates like the console: password from the terminal or --password-stdin, the session's
user is the actor, Abort is signed with the same password; refusals are one line and exit 1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from fillfinish.cli import command as command_cmd
from fillfinish.machine.packml import State

# the command alone, without the main app's callback (which configures logging onto CliRunner's closed stderr)
app = typer.Typer()
app.command("command")(command_cmd)


@app.callback()
def _group() -> None:
    """Keep `command` a sub-command."""


runner = CliRunner()


@pytest.fixture(scope="module")
def threaded_server(controller: Any, record: Any, users: Any, server_pki: Path, server_factory: Any) -> Iterator[Any]:
    """The server in its own thread and loop, as a separate controller process would be (the CLI runs asyncio.run)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    srv = server_factory(controller, record, users, server_pki)
    asyncio.run_coroutine_threadsafe(srv.start(), loop).result(60)
    try:
        yield srv
    finally:
        asyncio.run_coroutine_threadsafe(srv.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def command(endpoint: str, *args: str, input: str | None = None) -> tuple[int, str]:  # noqa: A002
    result = runner.invoke(app, ["command", *args, "--endpoint", endpoint], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture(autouse=True)
def _client_pki(client_pki: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FILLFINISH_CLIENT_PKI", str(client_pki))


def test_command_as_an_authenticated_user(threaded_server: Any, controller: Any, passwords: dict[str, str]) -> None:
    controller.state = State.Execute
    code, out = command(threaded_server.endpoint, "Hold", "--user", "op1", "--reason", "visual check",
                        "--password-stdin", input=passwords["op1"] + "\n")
    assert code == 0 and "Held" in out, out
    assert controller.commands == [("Hold", "op1", "visual check")]


def test_command_refusals_are_one_line(threaded_server: Any, controller: Any, passwords: dict[str, str]) -> None:
    controller.state = State.Execute
    code, out = command(threaded_server.endpoint, "Hold", "--user", "op1")
    assert code == 1 and "no terminal" in out and "--password-stdin" in out
    code, out = command(threaded_server.endpoint, "Hold", "--user", "op1", "--password-stdin",
                        input="not-my-password\n")
    assert code == 1 and "login refused for 'op1'" in out and "Traceback" not in out
    code, out = command(threaded_server.endpoint, "Abort", "--user", "op1", "--password-stdin",
                        input=passwords["op1"] + "\n")
    assert code == 1 and "role operator may not send Abort" in out
    code, out = command(threaded_server.endpoint, "Hold", "--user", "op1", "--password", passwords["op1"])
    assert code == 2, "passwords are not command-line options"
    assert controller.commands == []


def test_abort_is_signed_with_the_password(threaded_server: Any, controller: Any, passwords: dict[str, str]) -> None:
    controller.state = State.Execute
    code, out = command(threaded_server.endpoint, "8", "--user", "sup1", "--reason", "contamination",
                        "--password-stdin", input=passwords["sup1"] + "\n")
    assert code == 0 and "Aborted" in out, out
    assert controller.signatures == [{"meaning": "approved abort of the batch", "name": "sup1",
                                      "authenticated": True}]
