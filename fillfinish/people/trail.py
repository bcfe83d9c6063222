"""The accounts trail: every account change as an entry in the keyed, hash-chained registry `accounts` (REG-ACCOUNTS).

Each entry names the user, the event (created, role, password_set, disabled, enabled, unlocked, locked_out, ...),
the old and new values, the actor and the reason, and the account's whole state after the change (the password hash
only as a SHA-256 fingerprint). The current row in `app_user` must equal the state of its last trail entry: a role,
password hash, lock or active flag changed with plain SQL no longer matches, so `record verify` reports it and the
account cannot log in until an administrator records the change through fillfinish (decision 0012). The failure
counter is not part of the state (it changes at every failed login; the lock it leads to is).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from fillfinish.record.models import Entry
from fillfinish.record.names import escape_text
from fillfinish.record.registry import append_registry, registry_id
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_entries import TypedEntry
from fillfinish.record.typed_registry import registry_of_type
from fillfinish.record.vocabulary_registries import AccountEvent

REGISTRY = "accounts"
ENTRY_KIND = "account"
STATE_FIELDS: tuple[str, ...] = ("username", "full_name", "role", "active", "locked", "password",
                                 "password_set_at", "created_at", "created_by")
"""The account fields whose current value must equal the trail's."""


def account_state(row: Any) -> dict[str, Any]:
    """The trail's view of one app_user row: STATE_FIELDS, the password hash as a fingerprint."""
    return {
        "username": row.username,
        "full_name": row.full_name,
        "role": row.role,
        "active": bool(row.active),
        "locked": bool(row.locked),
        "password": hashlib.sha256(str(row.password_hash).encode()).hexdigest(),
        "password_set_at": row.password_set_at,
        "created_at": row.created_at,
        "created_by": row.created_by,
    }


def _app_user() -> Any:
    """The app_user table (defined in users.py; imported late to keep the import order simple)."""
    from fillfinish.people.users import APP_USER

    return APP_USER


def _rows(store: RecordStore, username: str | None = None) -> list[Any]:
    """app_user rows (all, or one user's)."""
    table = _app_user()
    query = select(table).order_by(table.c.user_id)
    if username is not None:
        query = query.where(table.c.username == username)
    with store.engine.connect() as conn:
        return list(conn.execute(query).all())


def record_change(store: RecordStore, username: str, event: str, actor: str, *, old: dict[str, Any] | None = None,
                  new: dict[str, Any] | None = None, reason: str = "") -> Entry | None:
    """Append the change `event` of `username` (already committed in app_user) with its resulting state."""
    rows = _rows(store, username)
    if not rows:
        return None
    data = {"user": username, "event": event, "old": old or {}, "new": new or {}, "reason": reason,
            "state": account_state(rows[0])}
    return append_registry(store, REGISTRY, ENTRY_KIND, data, actor)


def account_events(store: RecordStore, username: str | None = None) -> list[TypedEntry[AccountEvent]]:
    """The accounts trail read typed, oldest first, optionally of one user (entries the vocabulary refuses are
    left out: `record verify` reports a changed entry)."""
    rows = registry_of_type(store, REGISTRY, AccountEvent)
    return [row for row in rows if username is None or row.data.user == username]


def trail(store: RecordStore, username: str | None = None) -> list[Entry]:
    """The accounts trail's entries as written, oldest first, optionally of one user."""
    return [row.entry for row in account_events(store, username)]


def expected_states(store: RecordStore) -> dict[str, dict[str, Any]]:
    """{username: state after its last trail entry}: the fold of the trail."""
    return {row.data.user: row.data.state for row in account_events(store)}


def _differences(actual: dict[str, Any], expected: dict[str, Any] | None) -> list[str]:
    """The fields of an account that differ from its trail (['no trail'] without one)."""
    if expected is None:
        return ["it has no entry in the accounts trail (created outside fillfinish)"]
    out = []
    for name in STATE_FIELDS:
        if actual.get(name) != expected.get(name):
            shown = "changed" if name == "password" else f"{expected.get(name)!r} in the trail, {actual.get(name)!r} now"
            out.append(f"{name} {shown}")
    return out


def baseline(store: RecordStore) -> None:
    """Accounts created before the trail existed get one 'baseline' entry each (only while no trail exists at all)."""
    with store.engine.connect() as conn:
        exists = conn.execute(select(registry_exists_query(store))).scalar()
    if exists:
        return
    for row in _rows(store):
        append_registry(store, REGISTRY, ENTRY_KIND, {"user": row.username, "event": "baseline", "old": {},
                                                      "new": {}, "reason": "account existed before the trail",
                                                      "state": account_state(row)}, "system")


def registry_exists_query(store: RecordStore) -> Any:
    """EXISTS(header REG-ACCOUNTS or any ledger row of it): a trail was ever started in this record."""
    from sqlalchemy import exists, or_

    from fillfinish.record.models import BatchRow, LedgerRow

    rid = registry_id(REGISTRY)
    return or_(exists().where(BatchRow.__table__.c.batch_id == rid),
               exists().where(LedgerRow.__table__.c.batch_id == rid))


def account_problem(store: RecordStore, username: str) -> str | None:
    """Why the account `username` does not match its trail (None when it does, or when there is no such account)."""
    rows = _rows(store, username)
    if not rows:
        return None
    differences = _differences(account_state(rows[0]), expected_states(store).get(username))
    if not differences:
        return None
    return f"account {username!r} differs from its audit trail ({'; '.join(differences)}): changed outside fillfinish"


@dataclass(frozen=True)
class AccountsResult:
    """The check of every account against the trail: ok, how many were checked, one line per problem."""

    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Lines for `record verify`."""
        if self.ok:
            return [f"accounts: match their audit trail ({self.checked} accounts)"] if self.checked else []
        return [f"accounts: NOT INTACT: {escape_text(problem)}" for problem in self.problems]


def check_accounts(store: RecordStore) -> AccountsResult:
    """Compare every app_user row with the state its trail says it has; accounts in the trail must still exist."""
    rows = _rows(store)
    expected = expected_states(store)
    problems = []
    for row in rows:
        differences = _differences(account_state(row), expected.get(row.username))
        if differences:
            problems.append(f"{row.username}: {'; '.join(differences)}")
    missing = sorted(set(expected) - {row.username for row in rows})
    problems.extend(f"{name}: in the trail but missing from the accounts table" for name in missing)
    return AccountsResult(not problems, len(rows), problems)
