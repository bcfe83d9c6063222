"""The plumbing of the account store: its clock, its serialised write transaction, the audit row, password
rules and checks (argon2). UserLogin (user_login.py) and UserStore (users.py) build on it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, Engine, insert, select

from fillfinish.password_rules import PasswordRules, WeakPassword
from fillfinish.people.user_model import APP_USER, USER_EVENT, User, UserError, user_from_row
from fillfinish.record.chain import format_ts
from fillfinish.record.store import PG_WRITE_LOCK, RecordStore


class UserStoreBase:
    """The account store's shared plumbing; the attributes are set by UserStore.__init__ (users.py)."""

    _store: RecordStore
    _engine: Engine
    max_age: timedelta
    max_failures: int
    _now: Callable[[], datetime | float]
    _alert: Callable[[str, str], None]
    _hasher: PasswordHasher
    rules: PasswordRules

    def now(self) -> datetime:
        """The current time from the injected clock as an aware UTC datetime."""
        moment = self._now()
        if isinstance(moment, (int, float)):
            return datetime.fromtimestamp(float(moment), UTC)
        return moment.astimezone(UTC)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction, serialised like the record's (BEGIN IMMEDIATE on SQLite, advisory lock on PG)."""
        with self._engine.connect() as conn:
            conn.execution_options(fillfinish_write=True)
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(select(advisory_lock()))
                yield conn

    def _event(self, conn: Connection, username: str, event: str, actor: str, **detail: Any) -> None:
        """Append one audit row (same transaction as the change it describes)."""
        conn.execute(
            insert(USER_EVENT).values(
                ts=format_ts(self.now()),
                username=username,
                event=event,
                actor=actor,
                detail=json.dumps(detail, sort_keys=True, separators=(",", ":")),
            )
        )

    @staticmethod
    def _row(conn: Connection, username: str) -> Any:
        """The app_user row of `username` or None."""
        return conn.execute(select(APP_USER).where(APP_USER.c.username == username)).first()

    def _check_password(self, password: str, username: str) -> None:
        """Refuse passwords that break the site's rules (length, the user id, common passwords)."""
        try:
            self.rules.check(password, username)
        except WeakPassword as exc:
            raise UserError(str(exc)) from None

    @staticmethod
    def _must_change(conn: Connection, username: str) -> bool:
        """True when the account's current password was set by someone else with must_change (created/reset by an
        administrator): the latest 'created' or 'password_set' event of the account says so."""
        row = conn.execute(select(USER_EVENT.c.detail).where(
            USER_EVENT.c.username == username, USER_EVENT.c.event.in_(("created", "password_set")))
            .order_by(USER_EVENT.c.id.desc()).limit(1)).first()
        return bool(row is not None and json.loads(row.detail).get("must_change"))

    def must_change_password(self, username: str) -> bool:
        """True when `username` must change an administrator-set password before it can log in or sign."""
        with self._engine.connect() as conn:
            return self._must_change(conn, username)

    def get(self, username: str) -> User:
        """The account `username`; UserError when there is none."""
        with self._engine.connect() as conn:
            row = self._row(conn, username)
        if row is None:
            raise UserError(f"unknown user {username!r}")
        return user_from_row(row)

    def password_expired(self, user: User) -> bool:
        """True when the user's password is older than the age limit."""
        return self.now() - user.password_set_at > self.max_age

    def _verify(self, digest: str, password: str) -> bool:
        """True when `password` matches the argon2 `digest`."""
        try:
            return bool(self._hasher.verify(digest, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def plain_values(values: dict[str, Any]) -> dict[str, Any]:
    """Old/new values for the trail: plain JSON types (booleans from the database as bool)."""
    return {k: (bool(v) if k in ("active", "locked") else v) for k, v in values.items()}


def advisory_lock() -> Any:
    """SELECT pg_advisory_xact_lock(key): the record's writer lock, so user and record writes never interleave."""
    from sqlalchemy import func

    return func.pg_advisory_xact_lock(PG_WRITE_LOCK)
