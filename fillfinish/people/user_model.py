"""What an account is: the roles, the limits, the app_user/user_event tables, User and the people errors.

Kept apart from the UserStore service (users.py) so that readers of the tables (the accounts trail) and the
errors' users need not import the service; users.py re-exports every name.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text

from fillfinish.password_rules import DEFAULT_MIN_LENGTH
from fillfinish.record.chain import parse_ts

log = structlog.get_logger("fillfinish.people.users")

ROLES: tuple[str, ...] = ("operator", "supervisor", "qa", "admin", "service")
"""The roles of the domain brief: operator runs batches, supervisor handles alarms, QA reviews/releases, admin users;
service: a plant MES/historian account that may browse and read the controller only (fillfinish/command_roles.py)."""

MAX_FAILURES = 5
"""Consecutive failed authentications that lock an account (11.300(d))."""

DEFAULT_MAX_AGE_DAYS = 90.0
"""Default password age limit (11.300(b)); a site passes its own."""

MIN_PASSWORD_LENGTH = DEFAULT_MIN_LENGTH
"""Shortest password accepted by default (the site's [security.passwords] rules may ask for more)."""

USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")

_meta = MetaData()
APP_USER = Table(
    "app_user",
    _meta,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("full_name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("password_set_at", String(32), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("locked", Boolean, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("created_by", Text, nullable=False),
)
"""Current state of each account (migration 0002; UPDATE allowed, DELETE refused)."""

USER_EVENT = Table(
    "user_event",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", String(32), nullable=False),
    Column("username", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("actor", Text, nullable=False),
    Column("detail", Text, nullable=False),
)
"""Append-only audit trail of accounts (migration 0002; UPDATE/DELETE refused)."""


class PeopleError(Exception):
    """Base of the errors of users, signatures and release; the message is meant for the person at the terminal."""


class UserError(PeopleError):
    """Bad account input or operation (unknown user, duplicate name, bad role, weak password)."""


class AuthenticationError(PeopleError):
    """User id and password did not authenticate (wrong password, unknown or disabled user)."""


class AccountLocked(AuthenticationError):
    """The account is locked after repeated failures; an administrator must unlock it."""


class PasswordExpired(AuthenticationError):
    """The password is older than the age limit; it must be changed before the account can sign."""


class PasswordChangeRequired(PasswordExpired):
    """The password was set by an administrator (account created or reset): its owner must change it first."""


class PermissionDenied(PeopleError):
    """The authenticated user lacks the role for this action."""


@dataclass(frozen=True)
class User:
    """An account as callers see it (never the password hash)."""

    user_id: int
    username: str
    full_name: str
    role: str
    active: bool
    locked: bool
    failed_attempts: int
    password_set_at: datetime
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class UserEvent:
    """One row of the account audit trail."""

    ts: datetime
    username: str
    event: str
    actor: str
    detail: dict[str, Any]


def user_from_row(row: Any) -> User:
    """A row of app_user as a User."""
    return User(
        user_id=int(row.user_id),
        username=row.username,
        full_name=row.full_name,
        role=row.role,
        active=bool(row.active),
        locked=bool(row.locked),
        failed_attempts=int(row.failed_attempts),
        password_set_at=parse_ts(row.password_set_at),
        created_at=parse_ts(row.created_at),
        created_by=row.created_by,
    )


def default_alert(username: str, detail: str) -> None:
    """Default lockout alert: an error-level structured log event (the site routes it to its alarm/log server)."""
    log.error("user.locked_out", user=username, detail=detail)


def os_actor() -> str:
    """The operating-system login, for changes made without an authenticated administrator (bootstrap)."""
    try:
        return f"os:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name available (containers)
        return "os:unknown"
