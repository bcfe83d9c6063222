"""Accounts (21 CFR 11.300): unique ids, roles, argon2 hashes, lockout with alert, password ageing, audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fillfinish.people import AccountLocked, AuthenticationError, PasswordExpired, UserError, UserStore
from fillfinish.people.users import MAX_FAILURES
from people_helpers import PASSWORDS, StepClock


def test_add_get_list_and_hash(users: UserStore) -> None:
    """Accounts are created with their role and printed name; only an argon2 hash of the password is stored."""
    quinn = users.get("quinn")
    assert (quinn.full_name, quinn.role, quinn.active, quinn.locked) == ("Quinn Q. Assurance", "qa", True, False)
    assert [u.username for u in users.users()] == ["root", "olga", "sam", "quinn", "qiana"]
    with users._engine.connect() as conn:  # noqa: SLF001 - the test looks at the raw row
        digest = conn.execute(text("SELECT password_hash FROM app_user WHERE username='quinn'")).scalar()
    assert digest.startswith("$argon2id$") and PASSWORDS["quinn"] not in digest
    assert [e.event for e in users.events("quinn")] == ["created"]


@pytest.mark.parametrize(
    ("name", "full", "role", "password", "match"),
    [
        ("quinn", "Other", "qa", "long-enough-1", "already exists"),
        ("Bad Name", "X", "qa", "long-enough-1", "username"),
        ("newbie", "X", "boss", "long-enough-1", "role 'boss' is not allowed; allowed: operator, supervisor, qa, admin"),
        ("newbie", " ", "qa", "long-enough-1", "full name"),
        ("newbie", "X", "qa", "short", "at least 12"),
        ("newbie", "X", "qa", "Password1234", "common passwords"),
        ("newbie", "X", "qa", "NEWBIE", "at least 12 .*; password must not be the user id"),
        ("newbie", "X", "qa", "aaaaaaaaaaaaaa", "different characters"),
    ],
)
def test_bad_accounts_refused(users: UserStore, name: str, full: str, role: str, password: str, match: str) -> None:
    """Duplicate ids, bad names, unknown roles, empty printed names and short passwords are refused clearly."""
    with pytest.raises(UserError, match=match):
        users.add(name, full, role, password, actor="root")


def test_authenticate_and_wrong_password(users: UserStore) -> None:
    """The right password authenticates; a wrong one says how many attempts are left; a success resets the count."""
    assert users.authenticate("olga", PASSWORDS["olga"]).username == "olga"
    with pytest.raises(AuthenticationError, match="4 attempt"):
        users.authenticate("olga", "nope-nope")
    assert users.get("olga").failed_attempts == 1
    users.authenticate("olga", PASSWORDS["olga"])
    assert users.get("olga").failed_attempts == 0
    with pytest.raises(AuthenticationError, match="unknown user"):
        users.authenticate("nobody", "whatever1")
    assert [e.event for e in users.events("nobody")] == ["login_failed"]


def test_lockout_after_five_failures_with_alert(users: UserStore, alerts: list[tuple[str, str]]) -> None:
    """Five failures lock the account, raise the alert once and are recorded; then even the right password fails."""
    for _ in range(MAX_FAILURES - 1):
        with pytest.raises(AuthenticationError):
            users.authenticate("sam", "wrong-password")
    assert alerts == []
    with pytest.raises(AccountLocked, match="LOCKED after 5"):
        users.authenticate("sam", "wrong-password")
    assert alerts == [("sam", "locked after 5 failed authentications")]
    with pytest.raises(AccountLocked, match="locked"):
        users.authenticate("sam", PASSWORDS["sam"])
    events = [e.event for e in users.events("sam")]
    assert events == ["created"] + ["login_failed"] * 5 + ["locked_out", "login_refused"]
    users.unlock("sam", actor="root", reason="called the help desk")
    assert users.authenticate("sam", PASSWORDS["sam"]).failed_attempts == 0
    unlocked = users.events("sam")[-2]
    assert (unlocked.event, unlocked.actor, unlocked.detail["old"]["failed_attempts"]) == ("unlocked", "root", 5)


def test_disabled_user_cannot_authenticate(users: UserStore) -> None:
    """A disabled account is refused and stays listed (its id is never reused)."""
    users.disable("olga", actor="root", reason="left the company")
    with pytest.raises(AuthenticationError, match="disabled"):
        users.authenticate("olga", PASSWORDS["olga"])
    with pytest.raises(UserError, match="already exists"):
        users.add("olga", "Another Olga", "operator", "long-enough-1", actor="root")
    assert users.get("olga").active is False


def test_password_ageing(users: UserStore, clock: StepClock) -> None:
    """A password older than the limit is refused for signing; the user can change it with the old one."""
    clock.advance(timedelta(days=91))
    with pytest.raises(PasswordExpired, match="expired"):
        users.authenticate("quinn", PASSWORDS["quinn"])
    with pytest.raises(UserError, match="differ"):
        users.change_password("quinn", PASSWORDS["quinn"], PASSWORDS["quinn"])
    users.change_password("quinn", PASSWORDS["quinn"], "a-brand-new-one-2")
    assert users.authenticate("quinn", "a-brand-new-one-2").username == "quinn"
    with pytest.raises(AuthenticationError):
        users.authenticate("quinn", PASSWORDS["quinn"])
    assert "password_set" in [e.event for e in users.events("quinn")]


def test_user_tables_are_guarded_by_the_database(users: UserStore) -> None:
    """user_event refuses UPDATE and DELETE; app_user refuses DELETE and renames but allows state updates."""
    refused = [
        "UPDATE user_event SET event = 'nothing'",
        "DELETE FROM user_event",
        "DELETE FROM app_user WHERE username = 'olga'",
        "UPDATE app_user SET username = 'olga2' WHERE username = 'olga'",
    ]
    for sql in refused:
        with pytest.raises(DBAPIError, match="append-only|never deleted|permanent"):
            with users._engine.begin() as conn:  # noqa: SLF001
                conn.execute(text(sql))
    with users._engine.begin() as conn:  # noqa: SLF001
        conn.execute(text("UPDATE app_user SET failed_attempts = 2 WHERE username = 'olga'"))
    assert users.get("olga").failed_attempts == 2


def test_record_still_verifies_with_user_tables(users: UserStore) -> None:
    """The user tables are outside the hash chains: the (empty) record and ledger still verify."""
    assert users._store.verify().ok  # noqa: SLF001


def test_admin_set_password_must_be_changed(users: UserStore) -> None:
    """must_change (created or reset by an administrator) refuses every login and signature until the owner changes
    the password; the refusal is in the audit trail."""
    from fillfinish.people.users import PasswordChangeRequired

    users.add("nora", "Nora New", "operator", "set-by-admin-1", actor="root", must_change=True)
    assert users.must_change_password("nora")
    with pytest.raises(PasswordChangeRequired, match="must be changed"):
        users.authenticate("nora", "set-by-admin-1")
    assert users.events("nora")[-1].detail["reason"] == "password change required"
    users.change_password("nora", "set-by-admin-1", "chosen-by-nora-1")
    assert not users.must_change_password("nora")
    assert users.authenticate("nora", "chosen-by-nora-1").username == "nora"
    users.set_password("nora", "reset-by-admin-1", actor="root", must_change=True)
    with pytest.raises(PasswordChangeRequired):
        users.authenticate("nora", "reset-by-admin-1")
    assert not users.must_change_password("olga"), "accounts without the flag sign as before"
