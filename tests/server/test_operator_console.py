"""The Textual operator console driven by its pilot against a ControllerServer on a ControllerView test double."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, ProgressBar, Static

from fillfinish.hmi.app import OperatorConsole, state_class
from fillfinish.machine.packml import State
from fillfinish.server import ControllerServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

SIZE = (140, 45)


def text(app: OperatorConsole, selector: str) -> str:
    """The plain text a Static shows."""
    return str(app.query_one(selector, Static).content)


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the app run until condition() holds (the console refreshes every 0.1 s here)."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    assert condition()


async def settle(app: OperatorConsole, pilot: Pilot[Any]) -> None:
    """Wait for command workers, then for the screen to process their messages."""
    await app.workers.wait_for_complete()
    await pilot.pause()


def notifications(app: OperatorConsole) -> list[tuple[str, str, str]]:
    """(title, message, severity) of the toasts currently shown."""
    return [(n.title, n.message, n.severity) for n in app._notifications]


def console(server: ControllerServer) -> OperatorConsole:
    return OperatorConsole(server.endpoint, "op1", refresh_s=0.1)


async def test_state_label_follows_the_controller(server: ControllerServer, controller: Any) -> None:
    app = console(server)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: text(app, "#state") == "STOPPED")
        assert app.query_one("#state").has_class("state-stopped")
        assert "connected to" in text(app, "#connection")
        assert app.query_one("#connection").has_class("ok")
        assert "B-2026-001" in text(app, "#batch")
        assert "Production" in text(app, "#mode")
        assert "61.5 mJ/cm2" in text(app, "#uv")
        bar = app.query_one("#progress", ProgressBar)
        assert (bar.progress, bar.total) == (42, 100)
        assert "filled 42 / 100 planned" in text(app, "#counts")
        assert app.query_one("#cmd-Hold", Button).has_class("-invalid")
        assert not app.query_one("#cmd-Reset", Button).has_class("-invalid")

        controller.state = State.Execute
        await until(pilot, lambda: text(app, "#state") == "EXECUTE")
        assert app.query_one("#state").has_class("state-execute")
        assert not app.query_one("#state").has_class("state-stopped")
        assert not app.query_one("#cmd-Hold", Button).has_class("-invalid")


async def test_click_hold_sends_hold_with_operator_and_reason(server: ControllerServer, controller: Any) -> None:
    controller.state = State.Execute
    app = console(server)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: text(app, "#state") == "EXECUTE")
        await pilot.click("#reason")
        await pilot.press(*"stopper jam")
        await pilot.click("#cmd-Hold")
        await settle(app, pilot)
        assert controller.commands == [("Hold", "op1", "stopper jam")]
        await until(pilot, lambda: text(app, "#state") == "HELD")
        assert app.query_one("#state").has_class("state-held")
        assert "Hold accepted -> Held" in text(app, "#last-command")
        assert any(title == "Hold" for title, _, _ in notifications(app))


async def test_refused_command_shows_its_reason(server: ControllerServer, controller: Any) -> None:
    app = console(server)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: text(app, "#state") == "STOPPED")
        await pilot.click("#cmd-Unhold")
        await settle(app, pilot)
        assert controller.commands == [("Unhold", "op1", "")]
        shown = text(app, "#last-command")
        assert "Unhold REFUSED" in shown and "refused in state Stopped" in shown
        assert app.query_one("#last-command").has_class("error")
        title, message, severity = notifications(app)[-1]
        assert title == "Unhold refused" and severity == "error"
        assert "valid commands in Stopped: Reset (1), Abort (8)" in message
        assert text(app, "#state") == "STOPPED"


async def test_keys_send_commands(server: ControllerServer, controller: Any) -> None:
    app = console(server)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: text(app, "#state") == "STOPPED")
        app.query_one("#cmd-Start", Button).focus()
        await pilot.press("r")
        await settle(app, pilot)
        await until(pilot, lambda: text(app, "#state") == "IDLE")
        await pilot.press("s")
        await settle(app, pilot)
        await until(pilot, lambda: text(app, "#state") == "EXECUTE")
        await pilot.press("a")
        await settle(app, pilot)
        await until(pilot, lambda: text(app, "#state") == "ABORTED")
        assert app.query_one("#state").has_class("state-aborted")
        assert [c[0] for c in controller.commands] == ["Reset", "Start", "Abort"]


async def test_acknowledge_the_selected_alarm(server: ControllerServer, controller: Any, make_alarm: Any) -> None:
    controller.alarms = [make_alarm(7), make_alarm(9, "interlock", "door opened during fill")]
    app = console(server)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one("#alarms", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        table.move_cursor(row=1)
        assert app.selected_alarm_id() == 9
        await pilot.click("#ack")
        await settle(app, pilot)
        assert controller.acks == [(9, "op1")]
        await until(pilot, lambda: str(table.get_row("9")[1]) == "by op1")
        assert app.selected_alarm_id() == 9  # the cursor stays on the alarm across refreshes
        assert str(table.get_row("7")[1]) == "UNACK"


async def test_environment_out_of_limit_is_flagged(server: ControllerServer, controller: Any) -> None:
    controller.environment["particles_0_5um_per_m3"] = 5000.0
    app = console(server)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one("#environment", DataTable)
        await until(pilot, lambda: table.row_count == 3)
        particles = [str(c) for c in table.get_row("particles_0_5um_per_m3")]
        assert particles == ["particles_0_5um_per_m3", "5000", "<= 3520 /m3", "OUT"]
        assert [str(c) for c in table.get_row("downflow_m_s")][2:] == ["0.36-0.54 m/s", "ok"]
        assert [str(c) for c in table.get_row("hepa_dp_pa")][2] == "-"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_loss_is_shown_and_commands_say_not_sent() -> None:
    app = OperatorConsole(f"opc.tcp://127.0.0.1:{_free_port()}/fillfinish/controller", "op1", refresh_s=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.connection_state == "lost")
        assert "CONNECTION LOST" in text(app, "#connection")
        assert app.query_one("#connection").has_class("lost")
        assert text(app, "#state") == "NO CONNECTION"
        await pilot.click("#cmd-Stop")
        await settle(app, pilot)
        assert "Stop NOT SENT" in text(app, "#last-command")


async def test_operator_is_required() -> None:
    with pytest.raises(ValueError, match="operator"):
        OperatorConsole("opc.tcp://127.0.0.1:4840/fillfinish/controller", " ")


@pytest.mark.parametrize("state, css", [("Execute", "state-execute"), ("Held", "state-held"),
                                        ("Aborting", "state-aborted"), ("Starting", "state-acting"),
                                        ("Bogus", "state-unknown")])
async def test_state_colours(state: str, css: str) -> None:
    assert state_class(state) == css
