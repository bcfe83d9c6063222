"""The operator console: a Textual app showing the controller's PackML tags and sending commands over OPC UA.

It is only a client of the controller's OPC UA server (via fillfinish/hmi/client.py), so it shows exactly what an MES
sees; the controller decides, records and explains every command (docs/hmi.md). The person logs in with user id and
password (the controller authenticates the session), the console locks after a period without input, and the
commands the record needs a signature for ask for the password again (docs/security.md).

The app is put together here from modules with one job each: console_base.py (state, main screen, refresh),
console_login.py (login, lock), console_commands.py (commands, e-signature, acknowledge), dialogs.py (login and
signature screens), layout.py (widgets, CSS, keys), display.py and status_text.py (showing a status), limits.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.binding import BindingType
from textual.widgets import DataTable

from fillfinish.hmi.console_base import DEFAULT_LOCK_AFTER_S, ClientFactory  # noqa: F401 - re-exported
from fillfinish.hmi.console_commands import ConsoleCommands
from fillfinish.hmi.console_login import ConsoleLogin
from fillfinish.hmi.dialogs import LoginScreen, SignatureScreen  # noqa: F401 - re-exported
from fillfinish.hmi.display import RECONNECT_EVERY_S  # noqa: F401 - re-exported
from fillfinish.hmi.layout import ALARM_COLUMNS, CONSOLE_BINDINGS, CONSOLE_COMMANDS, CONSOLE_CSS, ENVIRONMENT_COLUMNS
from fillfinish.hmi.limits import DEFAULT_LIMITS, EnvLimit  # noqa: F401 - re-exported
from fillfinish.hmi.status_text import STALE_AFTER_S, state_class  # noqa: F401 - re-exported

__all__ = ["CONSOLE_COMMANDS", "DEFAULT_LIMITS", "DEFAULT_LOCK_AFTER_S", "EnvLimit", "LoginScreen", "OperatorConsole",
           "SignatureScreen", "run_console", "state_class"]


class OperatorConsole(ConsoleLogin, ConsoleCommands):
    """Operator console for one controller endpoint: log in, watch, command; every command is the logged-in user's."""

    TITLE = "fillfinish operator console"
    CSS = CONSOLE_CSS
    BINDINGS: ClassVar[list[BindingType]] = CONSOLE_BINDINGS

    def on_mount(self) -> None:
        """Set up the tables, start the refresh and lock timers, ask who is at the console."""
        self.sub_title = self.endpoint
        self.query_one("#environment", DataTable).add_columns(*ENVIRONMENT_COLUMNS)
        self.query_one("#alarms", DataTable).add_columns(*ALARM_COLUMNS)
        self.set_interval(self.refresh_s, self.refresh_status)
        self.set_interval(1.0, self.check_lock)
        self.show_login()


def run_console(endpoint: str, *, user: str = "", lock_after_s: float = DEFAULT_LOCK_AFTER_S,
                server_certificate: Path | None = None) -> None:
    """Run the operator console in the terminal until the person quits (q); it starts with the login."""
    OperatorConsole(endpoint, user=user, lock_after_s=lock_after_s, server_certificate=server_certificate).run()
