"""The console shows record text with its control characters escaped: an operator's reason with a newline cannot
print a fake line on the console (issue 6 point 7)."""

from __future__ import annotations

from textual.widgets import Static

from fillfinish.hmi.layout import EscapedStatic


def test_plain_text_is_escaped_and_other_calls_reach_the_widget() -> None:
    widget = Static("")
    shown = EscapedStatic(widget)
    shown.update("Stop reason: check\n999 release qa.lindqvist suitable\x1b[2J")
    text = str(widget.render())
    assert "\n" not in text and "\\n999 release" in text and "\\x1b" in text
    assert shown.id == widget.id
