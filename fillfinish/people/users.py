"""Users of the line (21 CFR 11.300): unique ids, roles, argon2 password hashes, ageing, lockout, an audit of each change.

Accounts live in the record database (`app_user`, migration 0002) next to the batch record, so a signature and the
account that made it are kept together. Every change of an account and every failed or refused login is written to the
append-only `user_event` table in the same transaction as the change. Accounts are never deleted, only disabled, so a
username is never reused.

This module is the service (UserStore: reads and changes); what an account is lives in user_model.py, the store's
plumbing in user_base.py and authentication in user_login.py. Every public name is importable from here.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from argon2 import PasswordHasher
from sqlalchemy import insert, select, update

from fillfinish.people import trail as account_trail
from fillfinish.password_rules import PasswordRules
from fillfinish.people.user_base import plain_values
from fillfinish.people.user_login import UserLogin
from fillfinish.people.user_model import (  # noqa: F401 - re-exported: callers import these from here
    APP_USER,
    DEFAULT_MAX_AGE_DAYS,
    MAX_FAILURES,
    MIN_PASSWORD_LENGTH,
    ROLES,
    USER_EVENT,
    USERNAME_CHARS,
    AccountLocked,
    AuthenticationError,
    PasswordChangeRequired,
    PasswordExpired,
    PeopleError,
    PermissionDenied,
    User,
    UserError,
    UserEvent,
    default_alert,
    os_actor,
    user_from_row,
)
from fillfinish.record.chain import format_ts, parse_ts
from fillfinish.record.store import RecordStore

log = structlog.get_logger(__name__)


class UserStore(UserLogin):
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

    # ------------------------------------------------------------------------------------------------ reads
    def users(self) -> list[User]:
        """All accounts (disabled ones too), by user id."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(APP_USER).order_by(APP_USER.c.user_id)).all()
        return [user_from_row(row) for row in rows]

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
        account_trail.record_change(self._store, username, event, actor, old=plain_values(old), new=plain_values(new),
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
