"""Names that cannot lie: the one pattern for actors and user ids, and escaping of record text for display.

An actor or user id is printable, single-line text (letters, digits and . _ - : @, 1-64 characters, starting with a
letter or digit), so a name can never carry a newline that prints a fake line into a rendering of the record. Free
text (reasons, messages) may hold anything, so every rendering passes it through `escape_text`.
"""

from __future__ import annotations

import re

ACTOR_RE = re.compile(r"[^\W_][\w.:@-]{0,63}")
"""Allowed actor / user id (used with fullmatch): letters and digits of any script, '.', '_', '-', ':' and '@'; one
line, no spaces, no control or formatting characters."""

ACTOR_RULE = "1-64 letters, digits, '.', '_', '-', ':' or '@', starting with a letter or digit (one line, no spaces)"

LINE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
"""Allowed line id (site config `[record] line_id`)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def valid_actor(name: object) -> bool:
    """True when `name` is an acceptable actor / user id."""
    return isinstance(name, str) and ACTOR_RE.fullmatch(name) is not None


def check_actor(name: object, what: str = "actor") -> str:
    """`name` when it is a valid actor, else ValueError naming the field and the rule."""
    if not valid_actor(name):
        raise ValueError(f"{what} {name!r} is not allowed; use {ACTOR_RULE}")
    assert isinstance(name, str)
    return name


def escape_text(text: object) -> str:
    """`text` with control characters (newline, carriage return, escape, bidi overrides, ...) shown as \\n, \\x1b,
    \\u202e, so no stored text can start a new line or repaint the terminal when the record is printed."""
    value = str(text)

    def _one(match: re.Match[str]) -> str:
        char = match.group(0)
        named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
        if char in named:
            return named[char]
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(_one, value)
