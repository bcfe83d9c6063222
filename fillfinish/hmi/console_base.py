"""The operator console's core: its state (the session's client, who is logged in, the last status), its main
screen, and the refresh that reads the controller's tags and shows them. Logging in and locking are in
console_login.py, the commands in console_commands.py; fillfinish/hmi/app.py puts them together."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec

from textual.app import App, ComposeResult
from textual.css.query import NoMatches
from textual.widgets import Static

from fillfinish.hmi.client import ClientError, ControllerClient, ControllerUnavailable
from fillfinish.hmi.display import RECONNECT_EVERY_S, StatusDisplay
from fillfinish.hmi.layout import EscapedStatic, main_screen
from fillfinish.hmi.limits import DEFAULT_LIMITS, EnvLimit

DEFAULT_LOCK_AFTER_S = 300.0
"""Seconds without a key press or click after which the console locks (the site's console_lock_after_s)."""

ClientFactory = Callable[[str, str], ControllerClient]
"""(user, password) -> a not yet connected ControllerClient for the console's endpoint."""

_P = ParamSpec("_P")


def until_closed(func: Callable[_P, Awaitable[None]]) -> Callable[_P, Awaitable[None]]:
    """An awaited OPC UA call may finish after the operator quit: drop its screen update instead of failing."""

    @functools.wraps(func)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            await func(*args, **kwargs)
        except NoMatches:
            pass

    return wrapper


class ConsoleBase(App[None]):
    """Operator console for one controller endpoint: its state, main screen and status refresh."""

    def __init__(
        self,
        endpoint: str,
        *,
        refresh_s: float = 0.5,
        limits: Mapping[str, EnvLimit] | None = None,
        lock_after_s: float = DEFAULT_LOCK_AFTER_S,
        pki_dir: Path | None = None,
        server_certificate: Path | None = None,
        client_factory: ClientFactory | None = None,
        now: Callable[[], float] = time.monotonic,
        user: str = "",
    ) -> None:
        if not lock_after_s > 0:
            raise ValueError(f"lock_after_s must be > 0 seconds, got {lock_after_s!r}")
        super().__init__()
        self.endpoint = endpoint
        self.refresh_s = refresh_s
        self.lock_after_s = lock_after_s
        self._factory = client_factory or (lambda u, p: ControllerClient(
            endpoint, user=u, password=p, pki_dir=pki_dir, server_certificate=server_certificate))
        self.client: ControllerClient | None = None
        self.user = ""  # who is logged in ("" while nobody is)
        self._first_user = user
        self.locked = False
        self._now = now
        self._last_input = now()
        self.status: dict[str, Any] | None = None
        self.connection_state = "logged out"
        self._busy = False
        self._next_connect = 0.0
        self.status_display = StatusDisplay(self._main, dict(DEFAULT_LIMITS if limits is None else limits))
        self.limits: dict[str, EnvLimit] = self.status_display.limits
        self.trends = self.status_display.trends

    def compose(self) -> ComposeResult:
        """The main screen (fillfinish/hmi/layout.py)."""
        yield from main_screen()

    async def on_unmount(self) -> None:
        """Close the OPC UA session."""
        if self.client is not None:
            await self.client.close()

    def _main(self, selector: str, kind: type[Any] = Static) -> Any:
        """A widget of the main screen (also while a login, lock or signature screen is on top). A Static comes
        wrapped so that every text it shows has its control characters escaped (a reason with a newline cannot
        print a fake line on the console; issue 6.7)."""
        widget = self.screen_stack[0].query_one(selector, kind)
        return EscapedStatic(widget) if isinstance(widget, Static) else widget

    @until_closed
    async def refresh_status(self) -> None:
        """Read the tags once (connecting first if needed) and update the screen; never raises."""
        if self._busy or self.client is None:
            return
        self._busy = True
        try:
            if not self.client.connected:
                now = time.monotonic()
                if now < self._next_connect:
                    return
                try:
                    await self.client.connect()
                except ClientError as exc:
                    self._next_connect = now + RECONNECT_EVERY_S
                    self._show_lost(str(exc))
                    return
            try:
                status = await self.client.status()
            except ControllerUnavailable as exc:
                self._next_connect = time.monotonic() + RECONNECT_EVERY_S
                self._show_lost(str(exc))
                return
            self._show(status)
        finally:
            self._busy = False

    def _show_lost(self, why: str) -> None:
        """Make a lost connection impossible to miss; never show a stale state as current."""
        self.connection_state = "lost"
        self.status = None
        self.status_display.show_lost(why)

    def _show(self, status: dict[str, Any]) -> None:
        """Update every widget from one decoded status."""
        self.status = status
        connected_as = f"connected to {self.endpoint} as {self.user}" + (" - LOCKED" if self.locked else "")
        self.connection_state = self.status_display.show(status, connected_as)

    def selected_alarm_id(self) -> int | None:
        """The batch alarm id under the cursor of the alarm list (None when empty or on a security event)."""
        return self.status_display.selected_alarm_id()

    def _last_command(self, text: str, *, error: bool) -> None:
        """The outcome of the last command or acknowledgement under the buttons (in red when refused)."""
        widget = self._main("#last-command")
        widget.update(text)
        widget.set_class(error, "error")
