"""The operator console: a Textual app showing the controller's PackML tags and sending commands over OPC UA.

It is only a client of the controller's OPC UA server (via fillfinish/hmi/client.py), so it shows exactly what an MES
sees; the controller decides, records and explains every command (docs/hmi.md). The person logs in with user id and
password (the controller authenticates the session), the console locks after a period without input, and the
commands the record needs a signature for ask for the password again (docs/security.md).
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, ParamSpec

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Input, ProgressBar, Static

from fillfinish.record.names import escape_text
from fillfinish.command_roles import SIGNATURE_MEANINGS
from fillfinish.hmi.client import (
    AcknowledgeRejected,
    ClientError,
    CommandRejected,
    ControllerClient,
    ControllerUnavailable,
    LoginRefused,
)
from fillfinish.hmi.readable import TREND_POINTS, TRENDED, LABELS, readable_rows, sparkline, uv_text

CONSOLE_COMMANDS: tuple[str, ...] = ("Start", "Hold", "Unhold", "Suspend", "Unsuspend", "Stop", "Complete", "Abort",
                                     "Reset", "Clear")
"""The PackML commands the console offers (buttons and keys, in this order)."""

DEFAULT_LOCK_AFTER_S = 300.0
"""Seconds without a key press or click after which the console locks (the site's console_lock_after_s)."""

STALE_AFTER_S = 3.0
"""A controller whose Heartbeat tag has not changed for this long is shown as not updating."""

RECONNECT_EVERY_S = 2.0

_P = ParamSpec("_P")


def _until_closed(func: Callable[_P, Awaitable[None]]) -> Callable[_P, Awaitable[None]]:
    """An awaited OPC UA call may finish after the operator quit: drop its screen update instead of failing."""

    @functools.wraps(func)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            await func(*args, **kwargs)
        except NoMatches:
            pass

    return wrapper


@dataclass(frozen=True)
class EnvLimit:
    """A displayed limit for one environment value: low and/or high bound, unit, and where it comes from."""

    low: float | None
    high: float | None
    unit: str
    basis: str

    def describe(self) -> str:
        """'0.36-0.54 m/s', '<= 3520 /m3' or '>= 28.3 L/min'."""
        if self.low is not None and self.high is not None:
            return f"{self.low:g}-{self.high:g} {self.unit}"
        if self.high is not None:
            return f"<= {self.high:g} {self.unit}"
        if self.low is not None:
            return f">= {self.low:g} {self.unit}"
        return self.unit

    def ok(self, value: float) -> bool:
        """True when value is within the bounds."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


DEFAULT_LIMITS: dict[str, EnvLimit] = {
    "particles_0_5um_per_m3": EnvLimit(None, 3520.0, "/m3", "Annex 1 grade A action"),
    "particles_5um_per_m3": EnvLimit(None, 29.0, "/m3", "Annex 1 grade A action"),
    "downflow_m_s": EnvLimit(0.36, 0.54, "m/s", "Annex 1 guidance"),
    "particle_flow_l_min": EnvLimit(28.3, None, "L/min", "Annex 1 sample flow"),
}
"""Limits shown next to environment values when the caller gives none (the recipe's limits are stricter)."""

_UNITS = {"hepa_dp_pa": "Pa", "downflow_m_s": "m/s", "particle_flow_l_min": "L/min",
          "particles_0_5um_per_m3": "/m3", "particles_5um_per_m3": "/m3"}

_STATE_CLASSES: dict[str, str] = {
    "Execute": "state-execute",
    "Held": "state-held",
    "Holding": "state-held",
    "Suspended": "state-held",
    "Suspending": "state-held",
    "Aborted": "state-aborted",
    "Aborting": "state-aborted",
    "Stopped": "state-stopped",
    "Stopping": "state-stopped",
    "Clearing": "state-stopped",
    "Idle": "state-idle",
    "Complete": "state-complete",
    "Completing": "state-acting",
    "Starting": "state-acting",
    "Resetting": "state-acting",
    "Unholding": "state-acting",
    "Unsuspending": "state-acting",
}
_ALL_STATE_CLASSES = frozenset(_STATE_CLASSES.values()) | {"state-unknown"}


def state_class(state_name: str) -> str:
    """The CSS class colouring a PackML state (run green, held amber, aborted red, ...)."""
    return _STATE_CLASSES.get(state_name, "state-unknown")


ClientFactory = Callable[[str, str], ControllerClient]
"""(user, password) -> a not yet connected ControllerClient for the console's endpoint."""


class LoginScreen(ModalScreen[tuple[str, str] | None]):
    """User id and password (a person logs in; the controller authenticates the session)."""

    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    #login-box { width: 64; height: auto; border: heavy $primary; padding: 1 2; background: $surface; }
    #login-box Input { margin: 1 0 0 0; }
    #login-error { color: $error; text-style: bold; height: auto; }
    """

    def __init__(self, title: str, *, user: str = "", user_fixed: bool = False, error: str = "",
                 allow_logout: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.user = user
        self.user_fixed = user_fixed
        self.error = error
        self.allow_logout = allow_logout

    def compose(self) -> ComposeResult:
        """Title, user id, password, error line, buttons."""
        with Vertical(id="login-box"):
            yield Static(self.title_text, id="login-title", markup=False)
            yield Input(value=self.user, placeholder="user id", id="login-user", disabled=self.user_fixed)
            yield Input(placeholder="password", password=True, id="login-password")
            yield Static(self.error, id="login-error", markup=False)
            with Horizontal():
                yield Button("Log in" if not self.user_fixed else "Unlock", id="login-ok", variant="primary")
                if self.allow_logout:
                    yield Button("Log out", id="login-logout")

    def on_mount(self) -> None:
        """Focus the first empty field."""
        self.query_one("#login-password" if self.user else "#login-user", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the user field moves on; Enter in the password field logs in."""
        if event.input.id == "login-user":
            self.query_one("#login-password", Input).focus()
        else:
            self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Log in / Unlock, or Log out (a locked console may be handed over to another person)."""
        event.stop()
        if event.button.id == "login-logout":
            self.dismiss(None)
        else:
            self._submit()

    def _submit(self) -> None:
        user = self.query_one("#login-user", Input).value.strip()
        password = self.query_one("#login-password", Input).value
        if not user or not password:
            self.show_error("enter your user id and password")
            return
        self.dismiss((user, password))

    def show_error(self, text: str) -> None:
        """Show why the login failed."""
        self.query_one("#login-error", Static).update(text)


class SignatureScreen(ModalScreen[str | None]):
    """An electronic signature: the logged-in person enters the password again for a command with a meaning."""

    DEFAULT_CSS = """
    SignatureScreen { align: center middle; }
    #sign-box { width: 72; height: auto; border: heavy $warning; padding: 1 2; background: $surface; }
    #sign-box Input { margin: 1 0 0 0; }
    """

    def __init__(self, user: str, command: str, meaning: str, reason: str) -> None:
        super().__init__()
        self.sig_user, self.sig_command, self.sig_meaning, self.sig_reason = user, command, meaning, reason

    def compose(self) -> ComposeResult:
        """What is signed, by whom, with which meaning; the password; Sign / Cancel."""
        with Vertical(id="sign-box"):
            yield Static(f"Electronic signature for {self.sig_command}", id="sign-title", markup=False)
            yield Static(f"Signed by: {self.sig_user}\nMeaning:   {self.sig_meaning}\nReason:    {self.sig_reason or '-'}",
                         id="sign-what", markup=False)
            yield Input(placeholder="your password", password=True, id="sign-password")
            with Horizontal():
                yield Button("Sign", id="sign-ok", variant="warning")
                yield Button("Cancel", id="sign-cancel")

    def on_mount(self) -> None:
        """Focus the password."""
        self.query_one("#sign-password", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter signs."""
        self._sign()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Sign or cancel."""
        event.stop()
        if event.button.id == "sign-ok":
            self._sign()
        else:
            self.dismiss(None)

    def _sign(self) -> None:
        password = self.query_one("#sign-password", Input).value
        if password:
            self.dismiss(password)


class OperatorConsole(App[None]):
    """Operator console for one controller endpoint: log in, watch, command; every command is the logged-in user's."""

    TITLE = "fillfinish operator console"
    CSS = """
    Screen { layout: vertical; }
    #connection { height: 1; padding: 0 1; }
    #connection.ok { background: $success-darken-2; color: $text; }
    #connection.lost { background: $error; color: $text; text-style: bold; }
    #connection.warn { background: $warning; color: $background; text-style: bold; }
    #top { height: 7; }
    #state { width: 36; height: 7; content-align: center middle; text-style: bold; border: heavy $primary; }
    .state-execute { background: green; color: white; }
    .state-held { background: darkorange; color: black; }
    .state-aborted { background: darkred; color: white; }
    .state-stopped { background: $panel; color: $text; }
    .state-idle { background: steelblue; color: white; }
    .state-complete { background: blue; color: white; }
    .state-acting { background: teal; color: white; text-style: bold italic; }
    .state-unknown { background: $surface; color: $text-muted; }
    #info { padding: 0 2; }
    #info Static { height: 1; }
    #progress-row { height: 1; padding: 0 1; }
    #progress { width: 50; }
    #counts { padding: 0 2; }
    #uv-row { height: 1; padding: 0 1; }
    #uv-progress { width: 30; }
    #uv { padding: 0 2; }
    #readings { height: 12; }
    #environment { width: 70; }
    #trends { width: 1fr; padding: 0 1; }
    #alarms { height: 1fr; min-height: 6; }
    #reason { margin: 0 1; }
    #buttons { height: 3; }
    #buttons Button { min-width: 8; margin: 0 1 0 0; }
    #buttons Button.-invalid { opacity: 50%; }
    #last-command { height: auto; max-height: 3; padding: 0 1; }
    #last-command.error { color: $error; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "command('Start')", "Start"),
        Binding("h", "command('Hold')", "Hold"),
        Binding("u", "command('Unhold')", "Unhold"),
        Binding("p", "command('Suspend')", "Suspend"),
        Binding("n", "command('Unsuspend')", "Unsuspend"),
        Binding("t", "command('Stop')", "Stop"),
        Binding("e", "command('Complete')", "Complete"),
        Binding("a", "command('Abort')", "Abort"),
        Binding("r", "command('Reset')", "Reset"),
        Binding("c", "command('Clear')", "Clear"),
        Binding("k", "acknowledge", "Ack alarm"),
        Binding("l", "lock", "Lock"),
        Binding("escape", "leave_reason", "Leave reason", show=False),
        Binding("q", "quit", "Quit"),
    ]

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
        self.limits: dict[str, EnvLimit] = dict(DEFAULT_LIMITS if limits is None else limits)
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
        self._heartbeat: Any = None
        self._heartbeat_seen = time.monotonic()
        self._alarm_rows: list[tuple[Any, ...]] = []
        self._env_rows: list[tuple[str, ...]] = []
        self.trends: dict[str, deque[float]] = {k: deque(maxlen=TREND_POINTS) for k in TRENDED}

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        """The screen: connection banner, big state, batch info, progress, UV, readings + trends, alarms, commands."""
        yield Header()
        yield Static("not logged in", id="connection", markup=False)
        with Horizontal(id="top"):
            yield Static("NO CONNECTION", id="state", classes="state-unknown", markup=False)
            with Vertical(id="info"):
                yield Static("", id="user", markup=False)
                yield Static("", id="mode", markup=False)
                yield Static("", id="batch", markup=False)
                yield Static("", id="product", markup=False)
                yield Static("", id="phase", markup=False)
                yield Static("", id="stop-reason", markup=False)
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=1, show_eta=False, id="progress")
            yield Static("", id="counts", markup=False)
        with Horizontal(id="uv-row"):
            yield ProgressBar(total=1, show_eta=False, show_percentage=False, id="uv-progress")
            yield Static("", id="uv", markup=False)
        with Horizontal(id="readings"):
            yield DataTable(id="environment", cursor_type="none", zebra_stripes=True)
            yield Static("", id="trends", markup=False)
        yield DataTable(id="alarms", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="reason for the next command (recorded in the batch record)", id="reason")
        with Horizontal(id="buttons"):
            for name in CONSOLE_COMMANDS:
                yield Button(name, id=f"cmd-{name}", variant=_variant(name))
            yield Button("Ack alarm", id="ack")
        yield Static("", id="last-command", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Set up the tables, start the refresh and lock timers, ask who is at the console."""
        self.sub_title = self.endpoint
        env = self.query_one("#environment", DataTable)
        env.add_columns("reading", "value", "limit", "")
        alarms = self.query_one("#alarms", DataTable)
        alarms.add_columns("id", "ack", "severity", "source", "message", "time (UTC)")
        self.set_interval(self.refresh_s, self.refresh_status)
        self.set_interval(1.0, self.check_lock)
        self.show_login()

    async def on_unmount(self) -> None:
        """Close the OPC UA session."""
        if self.client is not None:
            await self.client.close()

    def _main(self, selector: str, kind: type[Any] = Static) -> Any:
        """A widget of the main screen (also while a login, lock or signature screen is on top). A Static comes
        wrapped so that every text it shows has its control characters escaped (a reason with a newline cannot
        print a fake line on the console; issue 6.7)."""
        widget = self.screen_stack[0].query_one(selector, kind)
        return _EscapedStatic(widget) if isinstance(widget, Static) else widget

    # ----------------------------------------------------------------- login, lock

    async def on_event(self, event: events.Event) -> None:
        """Any key press or click is activity (the inactivity lock starts again)."""
        if isinstance(event, (events.Key, events.MouseDown)):
            self._last_input = self._now()
        await super().on_event(event)

    def show_login(self, error: str = "") -> None:
        """Ask for user id and password; the controller authenticates them by opening the session."""
        screen = LoginScreen(f"Log in to {self.endpoint}", user=self._first_user, error=error)
        self.push_screen(screen, self._login_entered)

    def _login_entered(self, entered: tuple[str, str] | None) -> None:
        """Connect as the entered user (in the background: the screen stays responsive)."""
        if entered is not None:
            self.run_worker(self.log_in(*entered), group="login", exit_on_error=False)

    async def log_in(self, user: str, password: str, *, unlocking: bool = False) -> bool:
        """Open a session as `user`; on success it replaces any previous one. A refusal asks again."""
        client = self._factory(user, password)
        try:
            await client.connect()
        except LoginRefused as exc:
            await client.close()
            self._after_failed_login(user, str(exc), unlocking)
            return False
        except ClientError as exc:
            await client.close()
            self._after_failed_login(user, str(exc), unlocking)
            return False
        old, self.client = self.client, client
        if old is not None:
            await old.close()
        self.user, self.locked = user, False
        self._last_input = self._now()
        self._main("#user").update(f"Logged in:   {user}")
        self.notify(f"logged in as {user}", title="Login", markup=False)
        await self.refresh_status()
        return True

    def _after_failed_login(self, user: str, why: str, unlocking: bool) -> None:
        """Show the refusal and ask again (the controller has recorded it)."""
        if unlocking:
            self._push_lock(error=why)
        else:
            self._first_user = user
            self.show_login(error=why)

    def check_lock(self) -> None:
        """Lock the console after lock_after_s without input (the session stays open; commands need the password)."""
        if self.user and not self.locked and self._now() - self._last_input >= self.lock_after_s:
            self.action_lock()

    def action_lock(self) -> None:
        """Lock now: the screen shows the machine but takes no command until the same person unlocks (or logs out)."""
        if not self.user or self.locked:
            return
        self.locked = True
        self._push_lock()

    def _push_lock(self, error: str = "") -> None:
        screen = LoginScreen(f"LOCKED - {self.user} was inactive. Password to unlock, or log out.", user=self.user,
                             user_fixed=True, error=error, allow_logout=True)
        self.push_screen(screen, self._unlock_entered)

    def _unlock_entered(self, entered: tuple[str, str] | None) -> None:
        """Unlock with the password (checked by the controller), or log out and show the login."""
        if entered is None:
            self.run_worker(self.log_out(), group="login", exit_on_error=False)
            return
        self.run_worker(self.log_in(self.user, entered[1], unlocking=True), group="login", exit_on_error=False)

    async def log_out(self) -> None:
        """Close the session and ask who logs in next."""
        client, self.client = self.client, None
        if client is not None:
            await client.close()
        self.user, self.locked = "", False
        self.connection_state = "logged out"
        self._main("#user").update("Logged in:   nobody")
        self.show_login()

    # ----------------------------------------------------------------- refresh

    @_until_closed
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
        banner = self._main("#connection")
        banner.update(f"CONNECTION LOST - commands cannot be sent; retrying every {RECONNECT_EVERY_S:g} s. {why}")
        banner.set_classes("lost")
        self._set_state("NO CONNECTION", "state-unknown")

    def _show(self, status: dict[str, Any]) -> None:
        """Update every widget from one decoded status."""
        self.status = status
        now = time.monotonic()
        if status.get("Heartbeat") != self._heartbeat:
            self._heartbeat = status.get("Heartbeat")
            self._heartbeat_seen = now
        banner = self._main("#connection")
        if status.get("StatusError"):
            self.connection_state = "warn"
            banner.update(f"CONTROLLER STATUS ERROR: {status['StatusError']} (values may be stale)")
            banner.set_classes("warn")
        elif now - self._heartbeat_seen > STALE_AFTER_S:
            self.connection_state = "warn"
            banner.update(f"CONTROLLER NOT UPDATING for {now - self._heartbeat_seen:.0f} s (values may be stale)")
            banner.set_classes("warn")
        else:
            self.connection_state = "ok"
            banner.update(f"connected to {self.endpoint} as {self.user}" + (" - LOCKED" if self.locked else ""))
            banner.set_classes("ok")

        name = str(status.get("StateCurrentName") or f"State {status.get('StateCurrent')}")
        self._set_state(name.upper(), state_class(name))
        self._main("#mode").update(
            f"Unit mode:   {status.get('UnitModeCurrentName')} ({status.get('UnitModeCurrent')})"
        )
        self._main("#batch").update(f"Batch:       {status.get('BatchId') or '-'}")
        self._main("#product").update(f"Product:     {status.get('Product') or '-'}")
        self._main("#phase").update(f"Phase:       {str(status.get('Phase') or '-').replace('_', ' ')}")
        cause = status.get("HoldCause") or ""
        self._main("#stop-reason").update(f"Stop reason: {status.get('StopReason') or '-'}"
                                          + (f"   (held by: {cause})" if cause else ""))

        planned = int(status.get("PlannedCount") or 0)
        processed = int(status.get("ProdProcessedCount") or 0)
        defective = int(status.get("ProdDefectiveCount") or 0)
        self._main("#progress", ProgressBar).update(total=max(planned, 1), progress=min(processed, max(planned, 1)))
        self._main("#counts").update(f"filled {processed} / {planned} planned   rejected {defective}")
        dose = float(status.get("UvDose_mJ_cm2") or 0.0)
        target = float(status.get("UvDoseTarget_mJ_cm2") or 0.0)
        self._main("#uv-progress", ProgressBar).update(total=max(target, 1.0), progress=min(dose, max(target, 1.0)))
        self._main("#uv").update(uv_text(dose, target, str(status.get("Phase") or "")))

        valid = set(status.get("ValidCommands") or [])
        for command in CONSOLE_COMMANDS:
            self._main(f"#cmd-{command}", Button).set_class(command not in valid, "-invalid")

        for key, (low, high) in (status.get("EnvironmentLimits") or {}).items():  # the batch recipe's own limits
            unit = self.limits[key].unit if key in self.limits else _UNITS.get(key, "")
            self.limits[key] = EnvLimit(low, high, unit, "recipe")
        env = status.get("Environment") or {}
        self._show_environment(env)
        self._show_trends(env)
        self._show_alarms(status.get("Alarms") or [], status.get("SecurityEvents") or [])

    def _set_state(self, text: str, css: str) -> None:
        label = self._main("#state")
        label.update(text)
        label.remove_class(*_ALL_STATE_CLASSES)
        label.add_class(css)

    def _show_environment(self, env: Mapping[str, float]) -> None:
        """Readings with labels and units, their limit and ok / OUT."""
        rows: list[tuple[Any, ...]] = []
        for key, label, text, bad in readable_rows(env):
            limit = self.limits.get(key)
            if limit is None:
                flag = Text("CHECK", style="bold white on red") if bad else Text("ok", style="green")
                rows.append((key, label, Text(text, style="bold red") if bad else text, "-", flag))
            elif limit.ok(float(env[key])):
                rows.append((key, label, text, limit.describe(), Text("ok", style="green")))
            else:
                rows.append((key, label, Text(text, style="bold red"), limit.describe(),
                             Text("OUT", style="bold white on red")))
        flat = [tuple(str(c) for c in r) for r in rows]
        if flat == self._env_rows:
            return
        self._env_rows = flat
        table = self._main("#environment", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*(escape_text(c) for c in row[1:]), key=str(row[0]))

    def _show_trends(self, env: Mapping[str, float]) -> None:
        """Short trends of particle counts and HEPA differential pressure against their limits."""
        lines = []
        for key in TRENDED:
            if key not in env:
                continue
            value = float(env[key])
            trend = self.trends[key]
            trend.append(value)
            limit = self.limits.get(key)
            label = LABELS[key]
            high = limit.high if limit else None
            bound = f"limit {limit.describe()}" if limit else "no limit"
            lines.append(f"{label.text}: {label.fmt.format(value)} {label.unit} ({bound})")
            lines.append(f"  {sparkline(trend, high)}")
        self._main("#trends").update("\n".join(lines) or "trends: no readings yet")

    def _show_alarms(self, alarms: list[dict[str, Any]], security: list[dict[str, Any]]) -> None:
        """Batch alarms (acknowledgeable) and the controller's security events (failed logins, lockouts, refusals)."""
        rows = [
            (
                int(a.get("alarm_id", 0)),
                f"by {a.get('acknowledged_by')}" if a.get("acknowledged") else "UNACK",
                str(a.get("severity", "")),
                str(a.get("source", "")),
                str(a.get("message", "")),
                str(a.get("time", ""))[:19].replace("T", " "),
            )
            for a in alarms
        ]
        for i, e in enumerate(security, start=1):
            rows.append((f"S{i}", "-", "security", str(e.get("event", "")),
                         f"{e.get('user', '')}: {e.get('detail', '')}", str(e.get("time", ""))[:19].replace("T", " ")))
        if rows == self._alarm_rows:
            return
        self._alarm_rows = rows
        table = self._main("#alarms", DataTable)
        selected = self.selected_alarm_id()
        table.clear()
        for row in rows:
            urgent = row[2] in ("interlock", "fault", "action", "security")
            style = "" if row[1] not in ("UNACK",) and row[2] != "security" else ("bold red" if urgent else "bold")
            table.add_row(*(Text(escape_text(c), style=style) for c in row), key=str(row[0]))
        if selected is not None and any(r[0] == selected for r in rows):
            table.move_cursor(row=table.get_row_index(str(selected)))

    def selected_alarm_id(self) -> int | None:
        """The batch alarm id under the cursor of the alarm list (None when empty or on a security event)."""
        table = self._main("#alarms", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        except Exception:
            return None
        return int(key) if key is not None and str(key).isdigit() else None

    # ----------------------------------------------------------------- commands

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Command buttons send their PackML command; Ack acknowledges the selected alarm."""
        button_id = event.button.id or ""
        if button_id.startswith("cmd-"):
            self.action_command(button_id.removeprefix("cmd-"))
        elif button_id == "ack":
            self.action_acknowledge()

    def needs_signature(self, name: str) -> str | None:
        """The signature meaning when the record needs one for `name` now (Abort, Complete, Unhold after an alarm)."""
        if name in ("Abort", "Complete"):
            return SIGNATURE_MEANINGS[name]
        if name == "Unhold" and self.status and self.status.get("HoldCause"):
            return SIGNATURE_MEANINGS["Unhold"]
        return None

    def action_command(self, name: str) -> None:
        """Send a PackML command in the background; ask for the e-signature first where the record needs one."""
        if self.client is None or self.locked:
            self.notify("log in (or unlock) first", title=name, severity="warning", markup=False)
            return
        meaning = self.needs_signature(name)
        if meaning is None:
            self.run_worker(self.send_command(name), group="commands", exit_on_error=False)
            return
        reason = self._main("#reason", Input).value.strip()

        def signed(password: str | None) -> None:
            if password is None:
                self._last_command(f"{name} not sent: signature cancelled", error=True)
                return
            self.run_worker(self.send_command(name, password), group="commands", exit_on_error=False)

        self.push_screen(SignatureScreen(self.user, name, meaning, reason), signed)

    def action_acknowledge(self) -> None:
        """Acknowledge the alarm under the cursor."""
        if self.client is None or self.locked:
            self.notify("log in (or unlock) first", title="Acknowledge", severity="warning", markup=False)
            return
        alarm_id = self.selected_alarm_id()
        if alarm_id is None:
            self.notify("No alarm selected.", title="Acknowledge", severity="warning", markup=False)
            return
        self.run_worker(self.acknowledge(alarm_id), group="commands", exit_on_error=False)

    def action_leave_reason(self) -> None:
        """Move focus off the reason field so the command keys work again."""
        self._main("#buttons Button", Button).focus()

    @_until_closed
    async def send_command(self, name: str, signature_password: str = "") -> None:
        """Send one command as the logged-in user with the typed reason; show the outcome (refusals with why)."""
        if self.client is None:
            return
        reason_input = self._main("#reason", Input)
        reason = reason_input.value.strip()
        try:
            new_state = await self.client.command(name, reason, signature_password)
        except CommandRejected as exc:
            self._last_command(f"{name} REFUSED: {exc.text}", error=True)
            self.notify(exc.text, title=f"{name} refused", severity="error", timeout=15, markup=False)
            return
        except ControllerUnavailable as exc:
            self._last_command(f"{name} NOT SENT: {exc}", error=True)
            self.notify(f"{name} not sent: {exc}", title="No connection", severity="error", timeout=15,
                        markup=False)
            self._show_lost(str(exc))
            return
        reason_input.value = ""
        signed = " (signed)" if signature_password else ""
        self._last_command(f"{name} accepted{signed} -> {new_state}", error=False)
        self.notify(f"{name} accepted: now {new_state}", title=name, markup=False)
        await self.refresh_status()

    @_until_closed
    async def acknowledge(self, alarm_id: int) -> None:
        """Acknowledge one alarm as the logged-in user; show the outcome."""
        if self.client is None:
            return
        try:
            text = await self.client.acknowledge(alarm_id)
        except AcknowledgeRejected as exc:
            self._last_command(f"acknowledge {alarm_id} REFUSED: {exc.text}", error=True)
            self.notify(exc.text, title="Acknowledge refused", severity="error", timeout=15, markup=False)
            return
        except ControllerUnavailable as exc:
            self.notify(f"not sent: {exc}", title="No connection", severity="error", timeout=15, markup=False)
            self._show_lost(str(exc))
            return
        self._last_command(text, error=False)
        self.notify(text, title="Alarm acknowledged", markup=False)
        await self.refresh_status()

    def _last_command(self, text: str, *, error: bool) -> None:
        widget = self._main("#last-command")
        widget.update(text)
        widget.set_class(error, "error")


def _variant(command: str) -> Any:
    """Button colour: Abort red, Hold/Stop amber, Start green, the rest default."""
    return {"Abort": "error", "Hold": "warning", "Stop": "warning", "Start": "success"}.get(command, "default")


def run_console(endpoint: str, *, user: str = "", lock_after_s: float = DEFAULT_LOCK_AFTER_S,
                server_certificate: Path | None = None) -> None:
    """Run the operator console in the terminal until the person quits (q); it starts with the login."""
    OperatorConsole(endpoint, user=user, lock_after_s=lock_after_s, server_certificate=server_certificate).run()


class _EscapedStatic:
    """A Static whose `update` escapes control characters in plain text (record text may hold newlines)."""

    def __init__(self, widget: Static) -> None:
        self._widget = widget

    def update(self, content: Any = "") -> None:
        """Show `content`; plain text is escaped, rich renderables are shown as they are."""
        self._widget.update(escape_text(content) if isinstance(content, str) else content)

    def __getattr__(self, name: str) -> Any:
        """Everything else as the Static itself."""
        return getattr(self._widget, name)
