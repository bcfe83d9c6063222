"""Authentication of an account (21 CFR 11.200/11.300): user id + password, failure count and lockout, ageing.

Every failed or refused login is written to the account audit trail in the same transaction as the failure count,
before the error is raised; the lockout alert and the accounts-trail entries follow the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, update

from fillfinish.people import trail as account_trail
from fillfinish.people.user_base import UserStoreBase
from fillfinish.people.user_model import (
    APP_USER,
    AccountLocked,
    AuthenticationError,
    PasswordChangeRequired,
    PasswordExpired,
    User,
    user_from_row,
)
from fillfinish.record.names import escape_text, valid_actor

log = structlog.get_logger("fillfinish.people.users")


@dataclass(frozen=True)
class LoginOutcome:
    """What one login attempt decided inside its transaction: the error to raise (None: accepted), whether the
    account locked now and whether its hash was upgraded."""

    error: AuthenticationError | None = None
    locked_now: bool = False
    rehashed: bool = False


class UserLogin(UserStoreBase):
    """The account store's authentication: `authenticate` with lockout after `max_failures` and password ageing."""

    def authenticate(self, username: str, password: str, *, allow_expired: bool = False, purpose: str = "") -> User:
        """Check user id + password (11.200); count failures and lock after `max_failures`, calling the alert.

        Raises AuthenticationError (unknown/disabled/wrong password), AccountLocked or PasswordExpired. Failures are
        committed to the audit trail before the error is raised.
        """
        if not valid_actor(username):  # never let a malformed name into the audit trail or the record
            log.warning("user.auth_failed", user=escape_text(username), error="malformed user id")
            raise AuthenticationError(f"user id {escape_text(username)!r} is not a valid user id")
        mismatch = account_trail.account_problem(self._store, username)
        with self._write() as conn:
            outcome = self._login(conn, username, password, mismatch, allow_expired, purpose)
        if outcome.locked_now:
            account_trail.record_change(self._store, username, "locked_out", "system", old={"locked": False},
                                        new={"locked": True}, reason=f"{self.max_failures} failed authentications")
            self._alert(username, f"locked after {self.max_failures} failed authentications")
        if outcome.rehashed:
            account_trail.record_change(self._store, username, "password_rehashed", "system",
                                        reason="password hash parameters upgraded at login")
        if outcome.error is not None:
            log.warning("user.auth_failed", user=username, error=str(outcome.error))
            raise outcome.error
        return self.get(username)

    def _login(self, conn: Connection, username: str, password: str, mismatch: str | None, allow_expired: bool,
               purpose: str) -> LoginOutcome:
        """One login attempt inside the write transaction: refuse, count a wrong password, or accept."""
        row = self._row(conn, username)
        refused = self._refusal(conn, row, username, mismatch, purpose)
        if refused is not None:
            return LoginOutcome(error=refused)
        if not self._verify(row.password_hash, password):
            return self._wrong_password(conn, row, username, purpose)
        return self._password_ok(conn, row, username, password, allow_expired, purpose)

    def _refusal(self, conn: Connection, row: Any, username: str, mismatch: str | None,
                 purpose: str) -> AuthenticationError | None:
        """The error (audited) for an account that may not log in at all: trail mismatch, unknown, disabled, locked."""
        if row is not None and mismatch is not None:
            self._event(conn, username, "login_refused", username, reason=mismatch, purpose=purpose)
            return AuthenticationError(f"user {username!r} refused: {mismatch}; an administrator must review it")
        if row is None:
            self._event(conn, username, "login_failed", username, reason="unknown user", purpose=purpose)
            return AuthenticationError(f"user {username!r}: unknown user or wrong password")
        if not row.active:
            self._event(conn, username, "login_refused", username, reason="account disabled", purpose=purpose)
            return AuthenticationError(f"user {username!r} is disabled")
        if row.locked:
            self._event(conn, username, "login_refused", username, reason="account locked", purpose=purpose)
            return AccountLocked(f"user {username!r} is locked after repeated failed logins; an administrator "
                                 "must unlock it (`fillfinish user unlock`)")
        return None

    def _wrong_password(self, conn: Connection, row: Any, username: str, purpose: str) -> LoginOutcome:
        """Count the failure (audited) and lock the account at `max_failures`."""
        failures = int(row.failed_attempts) + 1
        locked_now = failures >= self.max_failures
        conn.execute(update(APP_USER).where(APP_USER.c.user_id == row.user_id)
                     .values(failed_attempts=failures, locked=locked_now))
        self._event(conn, username, "login_failed", username, reason="wrong password", failures=failures,
                    purpose=purpose)
        if locked_now:
            self._event(conn, username, "locked_out", "system", failures=failures,
                        old={"locked": False}, new={"locked": True})
            return LoginOutcome(error=AccountLocked(f"user {username!r}: wrong password; account now LOCKED after "
                                                    f"{failures} failed attempts (alert raised)"), locked_now=True)
        left = self.max_failures - failures
        return LoginOutcome(error=AuthenticationError(f"user {username!r}: unknown user or wrong password "
                                                      f"({left} attempt(s) left before lockout)"))

    def _password_ok(self, conn: Connection, row: Any, username: str, password: str, allow_expired: bool,
                     purpose: str) -> LoginOutcome:
        """The password matched: reset failures, upgrade the hash if needed, then refuse a password to be changed."""
        rehashed = False
        if row.failed_attempts:
            conn.execute(update(APP_USER).where(APP_USER.c.user_id == row.user_id).values(failed_attempts=0))
        if self._hasher.check_needs_rehash(row.password_hash):
            conn.execute(update(APP_USER).where(APP_USER.c.user_id == row.user_id)
                         .values(password_hash=self._hasher.hash(password)))
            rehashed = True
        user = user_from_row(row)
        if not allow_expired and self._must_change(conn, username):
            self._event(conn, username, "login_refused", username, reason="password change required", purpose=purpose)
            return LoginOutcome(rehashed=rehashed, error=PasswordChangeRequired(
                f"user {username!r}: the password was set by an administrator and must be changed before "
                f"the first signature: `fillfinish user passwd {username}`"))
        if not allow_expired and self.password_expired(user):
            self._event(conn, username, "login_refused", username, reason="password expired", purpose=purpose)
            return LoginOutcome(rehashed=rehashed, error=PasswordExpired(
                f"user {username!r}: password older than {self.max_age.days} days has expired; change it "
                f"with `fillfinish user passwd {username}`"))
        self._event(conn, username, "authenticated", username, purpose=purpose)
        return LoginOutcome(rehashed=rehashed)
