"""The one error a person's request ends in when it cannot be done: shared by the services and the CLI."""

from __future__ import annotations


class UserError(Exception):
    """Something the person asked for cannot be done; the message says what, why, and what is allowed (one line)."""
