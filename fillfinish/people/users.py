"""Users of the line (21 CFR 11.300): unique ids, roles, argon2 password hashes, ageing, lockout, an audit of each change.

Accounts live in the record database (`app_user`, migration 0002) next to the batch record, so a signature and the
account that made it are kept together. Every change of an account and every failed or refused login is written to the
append-only `user_event` table in the same transaction as the change. Accounts are never deleted, only disabled, so a
username is never reused.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Boolean, Column, Connection, Integer, MetaData, String, Table, Text, insert, select, update

from fillfinish.people import trail as account_trail
from fillfinish.password_rules import DEFAULT_MIN_LENGTH, PasswordRules, WeakPassword
from fillfinish.record.chain import format_ts, parse_ts
from fillfinish.record.names import escape_text, valid_actor
from fillfinish.record.store import PG_WRITE_LOCK, RecordStore

log = structlog.get_logger(__name__)

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


def _user(row: Any) -> User:
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


class UserStore:
    """Accounts in the record database: add, disable, unlock, set password, authenticate with lockout and ageing."""

    def __init__(
        self,
        store: RecordStore,
        *,
        max_age_days: float = DEFAULT_MAX_AGE_DAYS,
        max_failures: int = MAX_FAILURES,
        now: Callable[[], datetime | float] | None = None,
        alert: Callable[[str, str], None] = default_alert,
        hasher: PasswordHasher | None = None,
        rules: PasswordRules | None = None,
    ) -> None:
        """Use the (already migrated) database of `store`; `max_age_days` is the password age limit, `alert` is
        called with (username, detail) when an account locks."""
        if max_age_days <= 0 or max_failures < 1:
            raise ValueError("max_age_days must be > 0 and max_failures >= 1")
        self._store = store
        self._engine = store.engine
        self.max_age = timedelta(days=max_age_days)
        self.max_failures = max_failures
        self._now = now or (lambda: datetime.now(UTC))
        self._alert = alert
        self._hasher = hasher or PasswordHasher()
        account_trail.baseline(store)  # accounts from before the keyed trail get one baseline entry (decision 0012)
        self.rules = rules or PasswordRules()

    # ------------------------------------------------------------------------------------------------ plumbing
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
                    conn.execute(select(_advisory_lock()))
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

    # ------------------------------------------------------------------------------------------------ reads
    def get(self, username: str) -> User:
        """The account `username`; UserError when there is none."""
        with self._engine.connect() as conn:
            row = self._row(conn, username)
        if row is None:
            raise UserError(f"unknown user {username!r}")
        return _user(row)

    def users(self) -> list[User]:
        """All accounts (disabled ones too), by user id."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(APP_USER).order_by(APP_USER.c.user_id)).all()
        return [_user(row) for row in rows]

    def events(self, username: str | None = None) -> list[UserEvent]:
        """The audit trail, oldest first, optionally of one username."""
        query = select(USER_EVENT).order_by(USER_EVENT.c.id)
        if username is not None:
            query = query.where(USER_EVENT.c.username == username)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [UserEvent(parse_ts(r.ts), r.username, r.event, r.actor, json.loads(r.detail)) for r in rows]

    def has_admin(self) -> bool:
        """True when at least one active administrator exists (then account changes need one)."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(APP_USER.c.user_id).where(APP_USER.c.role == "admin", APP_USER.c.active.is_(True)).limit(1)
            ).first()
        return row is not None

    def password_expired(self, user: User) -> bool:
        """True when the user's password is older than the age limit."""
        return self.now() - user.password_set_at > self.max_age

    # ------------------------------------------------------------------------------------------------ changes
    def add(self, username: str, full_name: str, role: str, password: str, *, actor: str,
            must_change: bool = False) -> User:
        """Create an account (username: lowercase letters, digits, . _ -; role one of ROLES); audited as 'created'.
        `must_change`: the password was chosen by an administrator and must be changed before the first signature."""
        if not username or len(username) > 64 or not set(username) <= USERNAME_CHARS or not username[0].isalnum():
            raise UserError(
                f"username {username!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if role not in ROLES:
            raise UserError(f"role {role!r} is not allowed; allowed: {', '.join(ROLES)}")
        if not isinstance(full_name, str) or not full_name.strip():
            raise UserError("full name (printed on signatures, 21 CFR 11.50) must not be empty")
        self._check_password(password, username)
        digest = self._hasher.hash(password)
        now = format_ts(self.now())
        with self._write() as conn:
            if self._row(conn, username) is not None:
                raise UserError(f"user {username!r} already exists (user ids are never reused)")
            conn.execute(
                insert(APP_USER).values(
                    username=username, full_name=full_name.strip(), role=role, password_hash=digest,
                    password_set_at=now, active=True, failed_attempts=0, locked=False, created_at=now,
                    created_by=actor,
                )
            )
            self._event(conn, username, "created", actor, role=role, full_name=full_name.strip(),
                        **({"must_change": True} if must_change else {}))
        account_trail.record_change(self._store, username, "created", actor,
                                    new={"role": role, "full_name": full_name.strip()})
        log.info("user.created", user=username, role=role, actor=actor)
        return self.get(username)

    def _change(self, username: str, event: str, actor: str, values: dict[str, Any], **detail: Any) -> User:
        """Update the account and audit the change with its old and new values (never the password hash)."""
        with self._write() as conn:
            row = self._row(conn, username)
            if row is None:
                raise UserError(f"unknown user {username!r}")
            old = {k: getattr(row, k) for k in values if k != "password_hash"}
            new = {k: v for k, v in values.items() if k != "password_hash"}
            conn.execute(update(APP_USER).where(APP_USER.c.user_id == row.user_id).values(**values))
            self._event(conn, username, event, actor, old=old, new=new, **detail)
        account_trail.record_change(self._store, username, event, actor, old=_plain(old), new=_plain(new),
                                    reason=str(detail.get("reason", "")))
        log.info(f"user.{event}", user=username, actor=actor)
        return self.get(username)

    def disable(self, username: str, *, actor: str, reason: str = "") -> User:
        """Disable an account (it can no longer authenticate; it stays in the database and its id is never reused)."""
        return self._change(username, "disabled", actor, {"active": False}, reason=reason)

    def enable(self, username: str, *, actor: str, reason: str = "") -> User:
        """Re-enable a disabled account."""
        return self._change(username, "enabled", actor, {"active": True}, reason=reason)

    def set_role(self, username: str, role: str, *, actor: str, reason: str = "") -> User:
        """Give an account another role (audited with old and new role, in user_event and the accounts trail)."""
        if role not in ROLES:
            raise UserError(f"role {role!r} is not allowed; allowed: {', '.join(ROLES)}")
        return self._change(username, "role", actor, {"role": role}, reason=reason)

    def unlock(self, username: str, *, actor: str, reason: str = "") -> User:
        """Unlock an account locked by repeated failures and reset its failure count."""
        return self._change(username, "unlocked", actor, {"locked": False, "failed_attempts": 0}, reason=reason)

    def set_password(self, username: str, new_password: str, *, actor: str, must_change: bool = False) -> User:
        """Set a new password (starts a new ageing period, resets failures; does not unlock); `must_change` for a
        reset by an administrator (the owner must change it before the first signature)."""
        self._check_password(new_password, username)
        values = {"password_hash": self._hasher.hash(new_password), "password_set_at": format_ts(self.now()),
                  "failed_attempts": 0}
        return self._change(username, "password_set", actor, values, **({"must_change": True} if must_change else {}))

    def change_password(self, username: str, old_password: str, new_password: str) -> User:
        """The user changes their own password (an expired one is accepted here, and only here)."""
        self.authenticate(username, old_password, allow_expired=True)
        if old_password == new_password:
            raise UserError("the new password must differ from the old one")
        return self.set_password(username, new_password, actor=username)

    # ------------------------------------------------------------------------------------------------ authentication
    def authenticate(self, username: str, password: str, *, allow_expired: bool = False, purpose: str = "") -> User:
        """Check user id + password (11.200); count failures and lock after `max_failures`, calling the alert.

        Raises AuthenticationError (unknown/disabled/wrong password), AccountLocked or PasswordExpired. Failures are
        committed to the audit trail before the error is raised.
        """
        error: AuthenticationError | None = None
        locked_now = rehashed = False
        if not valid_actor(username):  # never let a malformed name into the audit trail or the record
            log.warning("user.auth_failed", user=escape_text(username), error="malformed user id")
            raise AuthenticationError(f"user id {escape_text(username)!r} is not a valid user id")
        mismatch = account_trail.account_problem(self._store, username)
        with self._write() as conn:
            row = self._row(conn, username)
            if row is not None and mismatch is not None:
                self._event(conn, username, "login_refused", username, reason=mismatch, purpose=purpose)
                error = AuthenticationError(f"user {username!r} refused: {mismatch}; an administrator must review it")
            elif row is None:
                self._event(conn, username, "login_failed", username, reason="unknown user", purpose=purpose)
                error = AuthenticationError(f"user {username!r}: unknown user or wrong password")
            elif not row.active:
                self._event(conn, username, "login_refused", username, reason="account disabled", purpose=purpose)
                error = AuthenticationError(f"user {username!r} is disabled")
            elif row.locked:
                self._event(conn, username, "login_refused", username, reason="account locked", purpose=purpose)
                error = AccountLocked(f"user {username!r} is locked after repeated failed logins; an administrator "
                                      "must unlock it (`fillfinish user unlock`)")
            elif not self._verify(row.password_hash, password):
                failures = int(row.failed_attempts) + 1
                locked_now = failures >= self.max_failures
                conn.execute(update(APP_USER).where(APP_USER.c.user_id == row.user_id)
                             .values(failed_attempts=failures, locked=locked_now))
                self._event(conn, username, "login_failed", username, reason="wrong password", failures=failures,
                            purpose=purpose)
                if locked_now:
                    self._event(conn, username, "locked_out", "system", failures=failures,
                                old={"locked": False}, new={"locked": True})
                    error = AccountLocked(f"user {username!r}: wrong password; account now LOCKED after {failures} "
                                          "failed attempts (alert raised)")
                else:
                    error = AuthenticationError(f"user {username!r}: unknown user or wrong password "
                                                f"({self.max_failures - failures} attempt(s) left before lockout)")
            else:
                if row.failed_attempts:
                    conn.execute(update(APP_USER).where(APP_USER.c.user_id == row.user_id).values(failed_attempts=0))
                if self._hasher.check_needs_rehash(row.password_hash):
                    conn.execute(update(APP_USER).where(APP_USER.c.user_id == row.user_id)
                                 .values(password_hash=self._hasher.hash(password)))
                    rehashed = True
                user = _user(row)
                if not allow_expired and self._must_change(conn, username):
                    self._event(conn, username, "login_refused", username, reason="password change required",
                                purpose=purpose)
                    error = PasswordChangeRequired(
                        f"user {username!r}: the password was set by an administrator and must be changed before "
                        f"the first signature: `fillfinish user passwd {username}`")
                elif not allow_expired and self.password_expired(user):
                    self._event(conn, username, "login_refused", username, reason="password expired", purpose=purpose)
                    error = PasswordExpired(
                        f"user {username!r}: password older than {self.max_age.days} days has expired; change it "
                        f"with `fillfinish user passwd {username}`")
                else:
                    self._event(conn, username, "authenticated", username, purpose=purpose)
        if locked_now:
            account_trail.record_change(self._store, username, "locked_out", "system", old={"locked": False},
                                        new={"locked": True}, reason=f"{self.max_failures} failed authentications")
            self._alert(username, f"locked after {self.max_failures} failed authentications")
        if rehashed:
            account_trail.record_change(self._store, username, "password_rehashed", "system",
                                        reason="password hash parameters upgraded at login")
        if error is not None:
            log.warning("user.auth_failed", user=username, error=str(error))
            raise error
        return self.get(username)

    def _verify(self, digest: str, password: str) -> bool:
        """True when `password` matches the argon2 `digest`."""
        try:
            return bool(self._hasher.verify(digest, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Old/new values for the trail: plain JSON types (booleans from the database as bool)."""
    return {k: (bool(v) if k in ("active", "locked") else v) for k, v in values.items()}


def _advisory_lock() -> Any:
    """SELECT pg_advisory_xact_lock(key): the record's writer lock, so user and record writes never interleave."""
    from sqlalchemy import func

    return func.pg_advisory_xact_lock(PG_WRITE_LOCK)
