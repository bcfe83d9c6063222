"""The operator console: a Textual app showing the controller's PackML tags and sending commands over OPC UA.

It is only a client of the controller's OPC UA server (fillfinish/server.py via fillfinish/hmi/client.py), so it shows
exactly what an MES sees; the controller decides, records and explains every command (docs/hmi.md).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, ParamSpec

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.css.query import NoMatches
from textual.widgets import Button, DataTable, Footer, Header, Input, ProgressBar, Static

from fillfinish.hmi.client import (
    AcknowledgeRejected,
    CommandRejected,
    ControllerClient,
    ControllerUnavailable,
)

CONSOLE_COMMANDS: tuple[str, ...] = ("Start", "Hold", "Unhold", "Stop", "Abort", "Reset", "Clear")
"""The PackML commands the console offers (buttons and keys, in this order)."""

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


class OperatorConsole(App[None]):
    """Operator console for one controller endpoint; every command is sent as `operator`."""

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
    #uv { height: 1; padding: 0 1; }
    #tables { height: 1fr; }
    #environment { width: 62; }
    #alarms { width: 1fr; }
    #reason { margin: 0 1; }
    #buttons { height: 3; }
    #buttons Button { min-width: 10; margin: 0 1 0 0; }
    #buttons Button.-invalid { opacity: 50%; }
    #last-command { height: auto; max-height: 3; padding: 0 1; }
    #last-command.error { color: $error; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "command('Start')", "Start"),
        Binding("h", "command('Hold')", "Hold"),
        Binding("u", "command('Unhold')", "Unhold"),
        Binding("t", "command('Stop')", "Stop"),
        Binding("a", "command('Abort')", "Abort"),
        Binding("r", "command('Reset')", "Reset"),
        Binding("c", "command('Clear')", "Clear"),
        Binding("k", "acknowledge", "Ack alarm"),
        Binding("escape", "leave_reason", "Leave reason", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        endpoint: str,
        operator: str,
        *,
        refresh_s: float = 0.5,
        limits: Mapping[str, EnvLimit] | None = None,
        client: ControllerClient | None = None,
    ) -> None:
        if not operator or not operator.strip():
            raise ValueError("operator: the user id of the person at the console is required (e.g. --operator jdoe)")
        super().__init__()
        self.endpoint = endpoint
        self.operator = operator.strip()
        self.refresh_s = refresh_s
        self.limits: dict[str, EnvLimit] = dict(DEFAULT_LIMITS if limits is None else limits)
        self.client = client or ControllerClient(endpoint)
        self.status: dict[str, Any] | None = None
        self.connection_state = "connecting"
        self._busy = False
        self._next_connect = 0.0
        self._heartbeat: Any = None
        self._heartbeat_seen = time.monotonic()
        self._alarm_rows: list[tuple[Any, ...]] = []
        self._env_rows: list[tuple[Any, ...]] = []

    # ----------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        """The screen: connection banner, big state, batch info, progress, UV, environment, alarms, commands."""
        yield Header()
        yield Static("connecting ...", id="connection", markup=False)
        with Horizontal(id="top"):
            yield Static("NO CONNECTION", id="state", classes="state-unknown", markup=False)
            with Vertical(id="info"):
                yield Static("", id="mode", markup=False)
                yield Static("", id="batch", markup=False)
                yield Static("", id="product", markup=False)
                yield Static("", id="phase", markup=False)
                yield Static("", id="stop-reason", markup=False)
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=1, show_eta=False, id="progress")
            yield Static("", id="counts", markup=False)
        yield Static("", id="uv", markup=False)
        with Horizontal(id="tables"):
            yield DataTable(id="environment", cursor_type="none", zebra_stripes=True)
            yield DataTable(id="alarms", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="reason for the next command (recorded in the batch record)", id="reason")
        with Horizontal(id="buttons"):
            for name in CONSOLE_COMMANDS:
                yield Button(name, id=f"cmd-{name}", variant=_variant(name))
            yield Button("Ack alarm", id="ack")
        yield Static("", id="last-command", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Set up the tables and start the refresh timer."""
        self.sub_title = f"{self.operator} @ {self.endpoint}"
        env = self.query_one("#environment", DataTable)
        env.add_columns("environment", "value", "limit", "")
        alarms = self.query_one("#alarms", DataTable)
        alarms.add_columns("id", "ack", "severity", "source", "message", "time (UTC)")
        self.set_interval(self.refresh_s, self.refresh_status)
        self.call_after_refresh(self.refresh_status)

    async def on_unmount(self) -> None:
        """Close the OPC UA session."""
        await self.client.close()

    # ----------------------------------------------------------------- refresh

    @_until_closed
    async def refresh_status(self) -> None:
        """Read the tags once (connecting first if needed) and update the screen; never raises."""
        if self._busy:
            return
        self._busy = True
        try:
            if not self.client.connected:
                now = time.monotonic()
                if now < self._next_connect:
                    return
                try:
                    await self.client.connect()
                except ControllerUnavailable as exc:
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
        banner = self.query_one("#connection", Static)
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
        banner = self.query_one("#connection", Static)
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
            banner.update(f"connected to {self.endpoint} as {self.operator}")
            banner.set_classes("ok")

        name = str(status.get("StateCurrentName") or f"State {status.get('StateCurrent')}")
        self._set_state(name.upper(), state_class(name))
        self.query_one("#mode", Static).update(
            f"Unit mode:   {status.get('UnitModeCurrentName')} ({status.get('UnitModeCurrent')})"
        )
        self.query_one("#batch", Static).update(f"Batch:       {status.get('BatchId') or '-'}")
        self.query_one("#product", Static).update(f"Product:     {status.get('Product') or '-'}")
        self.query_one("#phase", Static).update(f"Phase:       {status.get('Phase') or '-'}")
        self.query_one("#stop-reason", Static).update(f"Stop reason: {status.get('StopReason') or '-'}")

        planned = int(status.get("PlannedCount") or 0)
        processed = int(status.get("ProdProcessedCount") or 0)
        defective = int(status.get("ProdDefectiveCount") or 0)
        self.query_one("#progress", ProgressBar).update(total=max(planned, 1), progress=min(processed, max(planned, 1)))
        self.query_one("#counts", Static).update(
            f"filled {processed} / {planned} planned   rejected {defective}"
        )
        self.query_one("#uv", Static).update(f"UV dose: {float(status.get('UvDose_mJ_cm2') or 0.0):.1f} mJ/cm2")

        valid = set(status.get("ValidCommands") or [])
        for command in CONSOLE_COMMANDS:
            self.query_one(f"#cmd-{command}", Button).set_class(command not in valid, "-invalid")

        for key, (low, high) in (status.get("EnvironmentLimits") or {}).items():  # the batch recipe's own limits
            unit = self.limits[key].unit if key in self.limits else _UNITS.get(key, "")
            self.limits[key] = EnvLimit(low, high, unit, "recipe")
        self._show_environment(status.get("Environment") or {})
        self._show_alarms(status.get("Alarms") or [])

    def _set_state(self, text: str, css: str) -> None:
        label = self.query_one("#state", Static)
        label.update(text)
        label.remove_class(*_ALL_STATE_CLASSES)
        label.add_class(css)

    def _show_environment(self, env: Mapping[str, float]) -> None:
        rows: list[tuple[Any, ...]] = []
        for key in sorted(env):
            value = float(env[key])
            limit = self.limits.get(key)
            if limit is None:
                rows.append((key, f"{value:g}", "-", ""))
            elif limit.ok(value):
                rows.append((key, f"{value:g}", limit.describe(), Text("ok", style="green")))
            else:
                rows.append((key, Text(f"{value:g}", style="bold red"), limit.describe(),
                             Text("OUT", style="bold white on red")))
        if [tuple(str(c) for c in r) for r in rows] == self._env_rows:
            return
        self._env_rows = [tuple(str(c) for c in r) for r in rows]
        table = self.query_one("#environment", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*row, key=str(row[0]))

    def _show_alarms(self, alarms: list[dict[str, Any]]) -> None:
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
        if rows == self._alarm_rows:
            return
        self._alarm_rows = rows
        table = self.query_one("#alarms", DataTable)
        selected = self.selected_alarm_id()
        table.clear()
        for row in rows:
            style = "" if row[1] != "UNACK" else ("bold red" if row[2] in ("interlock", "fault", "action") else "bold")
            table.add_row(*(Text(str(c), style=style) for c in row), key=str(row[0]))
        if selected is not None and any(r[0] == selected for r in rows):
            table.move_cursor(row=table.get_row_index(str(selected)))

    def selected_alarm_id(self) -> int | None:
        """The alarm id under the cursor of the alarm list (None when the list is empty)."""
        table = self.query_one("#alarms", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
        except Exception:
            return None
        return int(key) if key is not None else None

    # ----------------------------------------------------------------- commands

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Command buttons send their PackML command; Ack acknowledges the selected alarm."""
        button_id = event.button.id or ""
        if button_id.startswith("cmd-"):
            self.action_command(button_id.removeprefix("cmd-"))
        elif button_id == "ack":
            self.action_acknowledge()

    def action_command(self, name: str) -> None:
        """Send a PackML command in the background (the screen keeps refreshing)."""
        self.run_worker(self.send_command(name), group="commands", exit_on_error=False)

    def action_acknowledge(self) -> None:
        """Acknowledge the alarm under the cursor."""
        alarm_id = self.selected_alarm_id()
        if alarm_id is None:
            self.notify("No alarm selected.", title="Acknowledge", severity="warning", markup=False)
            return
        self.run_worker(self.acknowledge(alarm_id), group="commands", exit_on_error=False)

    def action_leave_reason(self) -> None:
        """Move focus off the reason field so the command keys work again."""
        self.query_one("#buttons Button", Button).focus()

    @_until_closed
    async def send_command(self, name: str) -> None:
        """Send one command as the operator with the typed reason; show the outcome (refusals with their reason)."""
        reason_input = self.query_one("#reason", Input)
        reason = reason_input.value.strip()
        try:
            new_state = await self.client.command(name, self.operator, reason)
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
        self._last_command(f"{name} accepted -> {new_state}", error=False)
        self.notify(f"{name} accepted: now {new_state}", title=name, markup=False)
        await self.refresh_status()

    @_until_closed
    async def acknowledge(self, alarm_id: int) -> None:
        """Acknowledge one alarm as the operator; show the outcome."""
        try:
            text = await self.client.acknowledge(alarm_id, self.operator)
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
        widget = self.query_one("#last-command", Static)
        widget.update(text)
        widget.set_class(error, "error")


def _variant(command: str) -> Any:
    """Button colour: Abort red, Hold/Stop amber, Start green, the rest default."""
    return {"Abort": "error", "Hold": "warning", "Stop": "warning", "Start": "success"}.get(command, "default")


def run_console(endpoint: str, operator: str) -> None:
    """Run the operator console in the terminal until the operator quits (q)."""
    OperatorConsole(endpoint, operator).run()
