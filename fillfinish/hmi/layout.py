"""The console's main screen: its widgets in order, their CSS, the command keys, and a Static wrapper that escapes
control characters in record text (an operator's reason with a newline cannot print a fake line; issue 6.7)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Footer, Header, Input, ProgressBar, Static

from fillfinish.record.names import escape_text

CONSOLE_COMMANDS: tuple[str, ...] = ("Start", "Hold", "Unhold", "Suspend", "Unsuspend", "Stop", "Complete", "Abort",
                                     "Reset", "Clear")
"""The PackML commands the console offers (buttons and keys, in this order)."""

CONSOLE_BINDINGS: list[BindingType] = [
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
"""One key per command, acknowledge, lock, leave the reason field, quit."""

CONSOLE_CSS = """
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
"""Colours by state (run green, held amber, aborted red) and the banner's ok / lost / warn."""

ENVIRONMENT_COLUMNS = ("reading", "value", "limit", "")
ALARM_COLUMNS = ("id", "ack", "severity", "source", "message", "time (UTC)")


def main_screen() -> ComposeResult:
    """The screen: connection banner, big state, batch info, progress, UV, readings + trends, alarms, commands."""
    yield Header()
    yield Static("not logged in", id="connection", markup=False)
    with Horizontal(id="top"):
        yield Static("NO CONNECTION", id="state", classes="state-unknown", markup=False)
        with Vertical(id="info"):
            for widget_id in ("user", "mode", "batch", "product", "phase", "stop-reason"):
                yield Static("", id=widget_id, markup=False)
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
            yield Button(name, id=f"cmd-{name}", variant=button_variant(name))
        yield Button("Ack alarm", id="ack")
    yield Static("", id="last-command", markup=False)
    yield Footer()


def button_variant(command: str) -> Any:
    """Button colour: Abort red, Hold/Stop amber, Start green, the rest default."""
    return {"Abort": "error", "Hold": "warning", "Stop": "warning", "Start": "success"}.get(command, "default")


class EscapedStatic:
    """A Static whose `update` escapes control characters in plain text (record text may hold newlines)."""

    def __init__(self, widget: Static) -> None:
        self._widget = widget

    def update(self, content: Any = "") -> None:
        """Show `content`; plain text is escaped, rich renderables are shown as they are. Text equal to what is
        shown is not set again: an update re-lays out the whole screen, and most lines are unchanged at each refresh."""
        if isinstance(content, str):
            content = escape_text(content)
            if isinstance(self._widget.content, str) and self._widget.content == content:
                return
        self._widget.update(content)

    def __getattr__(self, name: str) -> Any:
        """Everything else as the Static itself."""
        return getattr(self._widget, name)
