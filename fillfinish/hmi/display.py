"""Puts one decoded controller status on the console's main screen (banner, state, batch lines, progress, UV,
readings, trends, alarms, which command buttons are valid); the words come from status_text.py."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import Button, DataTable, ProgressBar

from fillfinish.hmi import status_text
from fillfinish.hmi.layout import CONSOLE_COMMANDS
from fillfinish.hmi.limits import EnvLimit, apply_recipe_limits
from fillfinish.hmi.readable import TREND_POINTS, TRENDED
from fillfinish.record.names import escape_text

RECONNECT_EVERY_S = 2.0
"""Seconds between attempts to reach a controller that did not answer."""

WidgetGetter = Callable[..., Any]
"""(selector[, widget type]) -> that widget of the main screen (a Static comes wrapped in EscapedStatic)."""


class StatusDisplay:
    """The main screen's view of the controller: remembers the heartbeat, the trends and the rows last shown."""

    def __init__(self, main: WidgetGetter, limits: dict[str, EnvLimit]) -> None:
        self._main = main
        self.limits = limits
        self.trends: dict[str, deque[float]] = {k: deque(maxlen=TREND_POINTS) for k in TRENDED}
        self._heartbeat: Any = None
        self._heartbeat_seen = time.monotonic()
        self._alarm_rows: list[tuple[Any, ...]] = []
        self._env_rows: list[tuple[str, ...]] = []

    def show_lost(self, why: str) -> None:
        """Make a lost connection impossible to miss; never show a stale state as current."""
        banner = self._main("#connection")
        banner.update(f"CONNECTION LOST - commands cannot be sent; retrying every {RECONNECT_EVERY_S:g} s. {why}")
        banner.set_classes("lost")
        self.set_state("NO CONNECTION", "state-unknown")

    def show(self, status: Mapping[str, Any], connected_as: str) -> str:
        """Update every widget from one decoded status; the connection state it shows ('ok' or 'warn')."""
        now = time.monotonic()
        if status.get("Heartbeat") != self._heartbeat:
            self._heartbeat = status.get("Heartbeat")
            self._heartbeat_seen = now
        text, state = status_text.banner(status, now - self._heartbeat_seen, connected_as)
        banner = self._main("#connection")
        banner.update(text)
        banner.set_classes(state)
        name = status_text.state_name(status)
        self.set_state(name.upper(), status_text.state_class(name))
        for selector, line in status_text.info_lines(status).items():
            self._main(selector).update(line)
        self._show_progress(status)
        valid = set(status.get("ValidCommands") or [])
        for command in CONSOLE_COMMANDS:
            self._main(f"#cmd-{command}", Button).set_class(command not in valid, "-invalid")
        apply_recipe_limits(self.limits, status.get("EnvironmentLimits") or {})  # the batch recipe's own limits
        env = status.get("Environment") or {}
        self._show_environment(env)
        status_text.add_to_trends(self.trends, env)
        self._main("#trends").update(status_text.trend_text(env, self.trends, self.limits))
        self._show_alarms(status.get("Alarms") or [], status.get("SecurityEvents") or [])
        return state

    def set_state(self, text: str, css: str) -> None:
        """The big state label and its colour."""
        label = self._main("#state")
        label.update(text)
        label.remove_class(*status_text.ALL_STATE_CLASSES)
        label.add_class(css)

    def _show_progress(self, status: Mapping[str, Any]) -> None:
        """Vials filled of planned, and the UV dose against its target."""
        total, progress, text = status_text.counts(status)
        self._main("#progress", ProgressBar).update(total=total, progress=progress)
        self._main("#counts").update(text)
        uv_total, uv_done, uv_line = status_text.uv_progress(status)
        self._main("#uv-progress", ProgressBar).update(total=uv_total, progress=uv_done)
        self._main("#uv").update(uv_line)

    def _show_environment(self, env: Mapping[str, float]) -> None:
        """Readings with labels and units, their limit and ok / OUT (redrawn only when a row changed)."""
        rows = status_text.environment_rows(env, self.limits)
        flat = [tuple(str(c) for c in r) for r in rows]
        if flat == self._env_rows:
            return
        self._env_rows = flat
        table = self._main("#environment", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*(escape_text(c) for c in row[1:]), key=str(row[0]))

    def _show_alarms(self, alarms: list[dict[str, Any]], security: list[dict[str, Any]]) -> None:
        """Batch alarms (acknowledgeable) and the controller's security events (failed logins, lockouts, refusals)."""
        rows = status_text.alarm_rows(alarms, security)
        if rows == self._alarm_rows:
            return
        self._alarm_rows = rows
        table = self._main("#alarms", DataTable)
        selected = self.selected_alarm_id()
        table.clear()
        for row in rows:
            style = status_text.alarm_style(row)
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

