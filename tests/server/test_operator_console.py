"""The Textual operator console driven by its pilot against a ControllerServer on a ControllerView test double:
login, lock after inactivity, e-signatures, readable values, commands as the logged-in user."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, ProgressBar, Static

from fillfinish.hmi.app import LoginScreen, OperatorConsole, SignatureScreen, state_class
from fillfinish.machine.packml import State
from fillfinish.server import ControllerServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

SIZE = (140, 45)


def text(app: OperatorConsole, selector: str) -> str:
    """The plain text a Static shows (on the main screen, also under a login or signature screen)."""
    return str(app.screen_stack[0].query_one(selector, Static).content)


HANG_GUARD_S = 60.0
"""Real seconds `until` gives a condition: a guard against a hang, never a bound on speed (a console login is a
signed and encrypted OPC UA session: under two CPU burners one took longer than the 5 s this was, 2026-11-30)."""


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = HANG_GUARD_S) -> None:
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


class FakeTime:
    """The console's inactivity clock, moved by the test (never real waiting)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def console(server: ControllerServer, login: Any, **kw: Any) -> OperatorConsole:
    """A console on the test server whose sessions use the test's client certificate folder."""
    return OperatorConsole(server.endpoint, refresh_s=0.1,
                           client_factory=lambda u, p: login(server.endpoint, u, p), **kw)


async def log_in(app: OperatorConsole, pilot: Pilot[Any], user: str, password: str) -> None:
    """Type user id and password into the login screen and press Enter. Waits for the screen's own first focus
    (its on_mount): under load a new login screen mounts later, and that focus then moved away from the password
    field the test had focused, so Enter only moved to the next field (stress run s11, 2026-12-01)."""
    await until(pilot, lambda: isinstance(app.screen, LoginScreen) and app.focused is not None
                and app.focused.screen is app.screen)
    app.screen.query_one("#login-user", Input).value = user
    app.screen.query_one("#login-password", Input).focus()
    await until(pilot, lambda: app.focused is not None and app.focused.id == "login-password")
    await submit(app, pilot, password)
    await app.workers.wait_for_complete()
    await pilot.pause()


async def submit(app: OperatorConsole, pilot: Pilot[Any], value: str) -> None:
    """Put `value` into the focused input and press Enter. Each pressed key repaints the whole screen (about 0.1 s
    here), so only the inactivity-lock test types a password key by key."""
    await pilot.pause()
    field = app.focused
    assert isinstance(field, Input), f"the focused widget is {field!r}, not an input"
    field.value = value
    await pilot.press("enter")


async def started(app: OperatorConsole, pilot: Pilot[Any], passwords: dict[str, str], user: str = "op1") -> None:
    """Log in and wait for the first status."""
    await log_in(app, pilot, user, passwords[user])
    await until(pilot, lambda: app.user == user and app.status is not None)


async def test_state_label_follows_the_controller(server: ControllerServer, controller: Any, login: Any,
                                                  passwords: dict[str, str]) -> None:
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        await until(pilot, lambda: text(app, "#state") == "STOPPED")
        assert "Logged in:   op1" in text(app, "#user")
        assert app.query_one("#state").has_class("state-stopped")
        assert "connected to" in text(app, "#connection")
        assert app.query_one("#connection").has_class("ok")
        assert "B-2026-001" in text(app, "#batch")
        assert "Production" in text(app, "#mode")
        assert text(app, "#uv") == "UV dose: 61.5 / 120.0 mJ/cm2 (51 %)"
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


async def test_click_hold_sends_hold_with_operator_and_reason(server: ControllerServer, controller: Any, login: Any,
        passwords: dict[str, str]) -> None:
    controller.state = State.Execute
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        await until(pilot, lambda: text(app, "#state") == "EXECUTE")
        await pilot.click("#reason")
        await pilot.press(*"stopper jam")
        await pilot.click("#cmd-Hold")
        await settle(app, pilot)
        await until(pilot, lambda: controller.commands == [("Hold", "op1", "stopper jam")])  # the logged-in user
        await until(pilot, lambda: text(app, "#state") == "HELD"
                    and "Hold accepted -> Held" in text(app, "#last-command"))
        assert app.query_one("#state").has_class("state-held")
        assert any(title == "Hold" for title, _, _ in notifications(app))


async def test_refused_command_shows_its_reason(server: ControllerServer, controller: Any, login: Any,
        passwords: dict[str, str]) -> None:
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        await until(pilot, lambda: text(app, "#state") == "STOPPED")
        await pilot.click("#cmd-Unhold")
        await settle(app, pilot)
        await until(pilot, lambda: controller.commands == [("Unhold", "op1", "")]
                    and "REFUSED" in text(app, "#last-command"))
        shown = text(app, "#last-command")
        assert "Unhold REFUSED" in shown and "refused in state Stopped" in shown
        assert app.query_one("#last-command").has_class("error")
        title, message, severity = notifications(app)[-1]
        assert title == "Unhold refused" and severity == "error"
        assert "valid commands in Stopped: Reset (1), Abort (8)" in message
        assert text(app, "#state") == "STOPPED"


async def test_keys_send_commands(server: ControllerServer, controller: Any, login: Any,
        passwords: dict[str, str]) -> None:
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        await until(pilot, lambda: text(app, "#state") == "STOPPED")
        app.query_one("#cmd-Start", Button).focus()
        controller.state = State.Stopped
        await pilot.press("r")
        await settle(app, pilot)
        await until(pilot, lambda: text(app, "#state") == "IDLE")
        await pilot.press("s")
        await settle(app, pilot)
        await until(pilot, lambda: text(app, "#state") == "EXECUTE")
        await pilot.press("h")
        await settle(app, pilot)
        await until(pilot, lambda: text(app, "#state") == "HELD")
        await pilot.press("u")  # after a person's Hold an operator may Unhold, without a signature
        await settle(app, pilot)
        await until(pilot, lambda: text(app, "#state") == "EXECUTE")
        await pilot.press("p")
        await settle(app, pilot)
        await until(pilot, lambda: text(app, "#state") == "SUSPENDED")
        await pilot.press("n")
        await settle(app, pilot)
        await until(pilot, lambda: text(app, "#state") == "EXECUTE")
        assert [c[0] for c in controller.commands] == ["Reset", "Start", "Hold", "Unhold", "Suspend", "Unsuspend"]


async def test_acknowledge_the_selected_alarm(server: ControllerServer, controller: Any, make_alarm: Any, login: Any,
        passwords: dict[str, str]) -> None:
    controller.alarms = [make_alarm(7), make_alarm(9, "interlock", "door opened during fill")]
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords, "sup1")
        table = app.query_one("#alarms", DataTable)
        await until(pilot, lambda: table.row_count == 2)
        table.move_cursor(row=1)
        assert app.selected_alarm_id() == 9
        await pilot.click("#ack")
        await settle(app, pilot)
        await until(pilot, lambda: controller.acks == [(9, "sup1")])
        await until(pilot, lambda: str(table.get_row("9")[1]) == "by sup1")
        assert app.selected_alarm_id() == 9  # the cursor stays on the alarm across refreshes
        assert str(table.get_row("7")[1]) == "UNACK"


async def test_environment_out_of_limit_is_flagged(server: ControllerServer, controller: Any, login: Any,
        passwords: dict[str, str]) -> None:
    controller.environment["particles_0_5um_per_m3"] = 5000.0
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        table = app.query_one("#environment", DataTable)
        await until(pilot, lambda: table.row_count == 3)
        particles = [str(c) for c in table.get_row("particles_0_5um_per_m3")]
        assert particles == ["Particles >= 0.5 um", "5,000 /m3", "<= 3520 /m3", "OUT"]
        assert [str(c) for c in table.get_row("downflow_m_s")][1:] == ["0.45 m/s", "0.36-0.54 m/s", "ok"]
        assert [str(c) for c in table.get_row("hepa_dp_pa")][:3] == ["HEPA differential pressure", "125.0 Pa", "-"]
        trends = text(app, "#trends")
        assert "Particles >= 0.5 um: 5,000 /m3 (limit <= 3520 /m3)" in trends
        assert "HEPA differential pressure: 125.0 Pa" in trends and "█" in trends


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_loss_is_shown_and_commands_say_not_sent(
    server_factory: Any, controller: Any, record: Any, users: Any, server_pki: Any, login: Any,
    passwords: dict[str, str]
) -> None:
    srv = server_factory(controller, record, users, server_pki)
    await srv.start()
    app = console(srv, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        await srv.stop()
        await until(pilot, lambda: app.connection_state == "lost")
        assert "CONNECTION LOST" in text(app, "#connection")
        assert app.query_one("#connection").has_class("lost")
        assert text(app, "#state") == "NO CONNECTION"
        await pilot.click("#cmd-Stop")
        await settle(app, pilot)
        await until(pilot, lambda: "Stop NOT SENT" in text(app, "#last-command"))


async def test_unreachable_controller_keeps_the_login_with_the_reason(login: Any) -> None:
    app = OperatorConsole(f"opc.tcp://127.0.0.1:{_free_port()}/fillfinish/controller", refresh_s=0.1,
                          client_factory=lambda u, p: login(
                              f"opc.tcp://127.0.0.1:{_free_port()}/fillfinish/controller", u, p, timeout_s=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await log_in(app, pilot, "op1", "op1-password-1")
        await until(pilot, lambda: isinstance(app.screen, LoginScreen)
                    and "cannot connect" in str(app.screen.query_one("#login-error", Static).content))
        assert app.user == "" and app.client is None


async def test_wrong_password_is_refused_and_appears_as_an_alarm(server: ControllerServer, controller: Any,
                                                                 login: Any, passwords: dict[str, str]) -> None:
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await log_in(app, pilot, "op1", "guessing-badly-1")
        await until(pilot, lambda: isinstance(app.screen, LoginScreen)
                    and "login refused for 'op1'" in str(app.screen.query_one("#login-error", Static).content))
        assert app.user == "" and app.client is None
        assert app.screen.query_one("#login-user", Input).value == "op1"
        await log_in(app, pilot, "op1", passwords["op1"])
        table = app.query_one("#alarms", DataTable)
        await until(pilot, lambda: any(str(table.get_row(k)[2]) == "security" for k in _keys(table)))
        rows = [[str(c) for c in table.get_row(k)] for k in _keys(table)]
        assert any(r[3] == "login_failed" and r[4].startswith("op1: ") for r in rows)


def _keys(table: DataTable[Any]) -> list[str]:
    return [str(r.value) for r in table.rows]


async def test_console_locks_after_inactivity_and_unlocks_with_the_password(
    server: ControllerServer, controller: Any, login: Any, passwords: dict[str, str]
) -> None:
    clock = FakeTime()
    app = console(server, login, lock_after_s=60, now=clock)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        clock.t += 59
        app.call_next(app.check_lock)  # what the console's 1 s timer does, run in the app's own task
        await pilot.pause()
        assert not app.locked
        await pilot.press("escape")  # any input starts the period again
        clock.t += 59
        app.call_next(app.check_lock)
        await pilot.pause()
        assert not app.locked
        clock.t += 61
        app.call_next(app.check_lock)
        await pilot.pause()
        assert app.locked and isinstance(app.screen, LoginScreen)
        assert app.screen.query_one("#login-user", Input).disabled
        app.call_next(app.action_command, "Hold")  # nothing is sent while locked
        await settle(app, pilot)
        assert controller.commands == []
        app.screen.query_one("#login-password", Input).focus()
        await pilot.press(*"wrong-password-1", "enter")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: isinstance(app.screen, LoginScreen)
                    and "login refused" in str(app.screen.query_one("#login-error", Static).content))
        assert app.locked
        app.screen.query_one("#login-password", Input).focus()
        await submit(app, pilot, passwords["op1"])
        await app.workers.wait_for_complete()
        await until(pilot, lambda: not app.locked and not isinstance(app.screen, LoginScreen))
        assert app.user == "op1"


async def test_locked_console_can_be_handed_over(server: ControllerServer, controller: Any, login: Any,
                                                 passwords: dict[str, str]) -> None:
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        await pilot.press("l")  # lock now
        await until(pilot, lambda: isinstance(app.screen, LoginScreen))
        await pilot.click("#login-logout")
        await app.workers.wait_for_complete()
        await until(pilot, lambda: app.user == "" and isinstance(app.screen, LoginScreen))
        await started(app, pilot, passwords, "sup1")
        assert "as sup1" in text(app, "#connection")


async def test_abort_asks_for_the_signature_and_records_its_meaning(
    server: ControllerServer, controller: Any, login: Any, passwords: dict[str, str]
) -> None:
    controller.state = State.Execute
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords, "sup1")
        app.query_one("#reason", Input).value = "contamination"
        await pilot.click("#cmd-Abort")
        await until(pilot, lambda: isinstance(app.screen, SignatureScreen))
        assert "approved abort of the batch" in str(app.screen.query_one("#sign-what", Static).content)
        await pilot.click("#sign-cancel")
        await until(pilot, lambda: "signature cancelled" in text(app, "#last-command"))
        assert controller.commands == []
        await pilot.click("#cmd-Abort")
        await until(pilot, lambda: isinstance(app.screen, SignatureScreen))
        await submit(app, pilot, passwords["sup1"])
        await settle(app, pilot)  # the password is checked, then the command goes out: wait on what is seen
        await until(pilot, lambda: "Abort accepted (signed) -> Aborted" in text(app, "#last-command"))
        assert controller.commands == [("Abort", "sup1", "contamination")]
        assert controller.signatures == [{"meaning": "approved abort of the batch", "name": "sup1",
                                          "authenticated": True}]


async def test_unhold_after_an_alarm_is_refused_for_an_operator(
    server: ControllerServer, controller: Any, login: Any, passwords: dict[str, str]
) -> None:
    controller.state = State.Held
    controller.hold_cause = "HEPA fan stopped"
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        await until(pilot, lambda: "held by: HEPA fan stopped" in text(app, "#stop-reason"))
        await pilot.click("#cmd-Unhold")
        await until(pilot, lambda: isinstance(app.screen, SignatureScreen))
        await submit(app, pilot, passwords["op1"])
        await settle(app, pilot)
        refused = "Unhold REFUSED: Unhold after an alarm needs a supervisor"
        await until(pilot, lambda: refused in text(app, "#last-command"))
        assert controller.commands == []


async def test_readable_door_and_devices(server: ControllerServer, controller: Any, login: Any,
                                         passwords: dict[str, str]) -> None:
    controller.environment.update({"door_closed": 1.0, "door_locked": 1.0, "hepa_fan_running": 1.0})
    app = console(server, login)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot, passwords)
        table = app.query_one("#environment", DataTable)
        await until(pilot, lambda: "door" in _keys(table))
        assert [str(c) for c in table.get_row("door")][:2] == ["Door", "closed, locked"]
        assert [str(c) for c in table.get_row("hepa_fan_running")][:2] == ["HEPA fan", "running"]
        controller.environment["door_locked"] = 0.0
        await until(pilot, lambda: str(table.get_row("door")[1]) == "closed, UNLOCKED")
        assert str(table.get_row("door")[3]) == "CHECK"


@pytest.mark.parametrize("state, css", [("Execute", "state-execute"), ("Held", "state-held"),
                                        ("Aborting", "state-aborted"), ("Starting", "state-acting"),
                                        ("Bogus", "state-unknown")])
async def test_state_colours(state: str, css: str) -> None:
    assert state_class(state) == css
