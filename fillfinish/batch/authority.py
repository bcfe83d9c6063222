"""Who may act on a batch: once the record has user accounts, the person must log in with a role that allows it.

Used by the batch service for start, resume and abort (21 CFR 11.10(g)). The password comes from a callable the
caller provides (the CLI asks on the terminal or reads --password-stdin; tests give it directly), so it is asked
only when the record has accounts and never travels on a command line.
"""

from __future__ import annotations

from typing import Callable

from fillfinish.errors import UserError

PasswordSource = Callable[[], str]
"""Gives the acting person's password when asked (may raise PasswordInputError)."""

START_ROLES = ("operator", "supervisor")
DECIDE_ROLES = ("supervisor",)  # resume or abort a Held batch


def authorise(db_url: str, person: str, roles: tuple[str, ...], what: str,
              password: PasswordSource | None) -> bool:
    """Authenticate `person` with one of `roles` for `what` when the record has accounts (UserError otherwise);
    without accounts names are recorded as given. Returns True when the person was authenticated."""
    from fillfinish.password_input import PasswordInputError
    from fillfinish.people import PeopleError, UserStore
    from fillfinish.record.store import RecordStore

    with RecordStore(db_url) as store:
        users = UserStore(store)
        if not users.users():
            return False
        if password is None:
            raise UserError(f"{what}: the record has user accounts: a password is needed")
        try:
            secret = password()
        except PasswordInputError as exc:
            raise UserError(f"{what}: the record has user accounts: {exc}") from None
        try:
            account = users.authenticate(person, secret, purpose=what)
        except PeopleError as exc:
            raise UserError(f"{what}: {exc}") from exc
        if account.role not in roles:
            raise UserError(f"{what}: {person} has role {account.role}; allowed: {', '.join(roles)}")
    return True


def site_accounts(db_url: str) -> list[str]:
    """User ids in the record other than the demo's own (demo.*): a non-empty list means a site's record."""
    from fillfinish.people import UserStore
    from fillfinish.record.store import RecordOpenError, RecordStore

    try:
        with RecordStore(db_url) as store:
            return [u.username for u in UserStore(store).users() if not u.username.startswith("demo.")]
    except RecordOpenError as exc:
        raise UserError(str(exc)) from None
