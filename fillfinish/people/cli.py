"""`fillfinish user ...`: accounts from the command line (deviations, QA review/release/rejection moved to
fillfinish/quality/cli.py).

The lead mounts `user_app` under the main CLI. Passwords are prompted (hidden) on the
terminal, or read one line each from standard input with --password-stdin (scripts); never command-line options.
Every refusal prints one clear line on stderr and exits 1, never a traceback.
"""

from __future__ import annotations

import datetime

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn, Optional

import typer
from sqlalchemy.exc import SQLAlchemyError

from fillfinish.password_input import PasswordInputError, PasswordStdinOption, read_password
from fillfinish.people.users import DEFAULT_MAX_AGE_DAYS, ROLES, PeopleError, PermissionDenied, UserStore, os_actor
from fillfinish.record.cli import resolve_db_url
from fillfinish.record.names import escape_text
from fillfinish.record.store import RecordError, RecordStore, safe_url
from fillfinish.security_settings import password_rules_from_env
from fillfinish.validation import FileProblemsError

MAX_AGE_ENV = "FILLFINISH_PASSWORD_MAX_AGE_DAYS"

user_app = typer.Typer(name="user", help="User accounts (21 CFR 11.300).", no_args_is_help=True, add_completion=False)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite path (env FILLFINISH_DB).",
                                              show_default=False)]
AdminOption = Annotated[str | None, typer.Option("--admin", help="Administrator making the change (required once an "
                                                 "active admin exists).", show_default=False)]


def _fail(message: str) -> NoReturn:
    """Print `message` to stderr and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _max_age() -> float:
    """Password age limit in days from $FILLFINISH_PASSWORD_MAX_AGE_DAYS (default 90)."""
    raw = os.environ.get(MAX_AGE_ENV)
    if raw is None:
        return DEFAULT_MAX_AGE_DAYS
    try:
        value = float(raw)
    except ValueError:
        _fail(f"{MAX_AGE_ENV}={raw!r} is not a number of days")
    if value <= 0:
        _fail(f"{MAX_AGE_ENV}={raw!r} must be > 0 days")
    return value


@contextmanager
def _opened(db: str | None, *, create: bool = False,
            read_only: bool = False) -> Iterator[tuple[RecordStore, UserStore]]:
    """Open the record (and its users); any people/record/database error becomes one line and exit 1."""
    url = resolve_db_url(db)
    max_age = _max_age()
    try:
        rules = password_rules_from_env()
    except FileProblemsError as exc:
        _fail("; ".join(exc.problems))
    try:
        store = RecordStore(url, create=create, read_only=read_only)
    except RecordError as exc:
        _fail(str(exc))
    try:
        yield store, UserStore(store, max_age_days=max_age, rules=rules)
    except (PeopleError, RecordError, PasswordInputError) as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"database error on {safe_url(url)}: {str(exc).splitlines()[0]}")
    finally:
        store.close()


def _admin_actor(users: UserStore, admin: str | None, stdin: bool, what: str) -> str:
    """Who makes an account change: an authenticated admin, or the OS login while no active admin exists (bootstrap)."""
    if admin is None:
        if users.has_admin():
            _fail(f"{what} needs an administrator: give --admin NAME (and its password)")
        return os_actor()
    account = users.authenticate(admin, read_password(f"Password for {admin}", from_stdin=stdin), purpose=what)
    if account.role != "admin":
        raise PermissionDenied(f"user {admin} has role {account.role}; {what} needs role admin")
    return account.username


# ---------------------------------------------------------------------------------------------------- user
@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User id (lowercase letters, digits, . _ -).")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    full_name: Annotated[str, typer.Option("--full-name", help="Printed name shown on signatures.")],
    admin: AdminOption = None,
    password_stdin: PasswordStdinOption = False,
    db: DbOption = None,
) -> None:
    """Create an account (the first account, while no admin exists, may be created without --admin). Asks the
    admin's password first, then the new account's; an account created by an admin must change its password before
    its first signature (`fillfinish user passwd`)."""
    if role not in ROLES:
        _fail(f"--role {role!r} is not allowed; allowed: {', '.join(ROLES)}")
    with _opened(db, create=True) as (_store, users):
        actor = _admin_actor(users, admin, password_stdin, f"adding user {name}")
        password = read_password(f"Password for {name}", from_stdin=password_stdin, confirm=True)
        user = users.add(name, full_name, role, password, actor=actor, must_change=admin is not None)
        typer.echo(f"user {user.username} ({user.full_name}, {user.role}) created by {actor}"
                   + (f"; {name} must change this password before the first signature" if admin else ""))


@user_app.command("list")
def user_list(db: DbOption = None) -> None:
    """List accounts with role, state and password age."""
    with _opened(db, create=False) as (_store, users):
        rows = users.users()
        if not rows:
            typer.echo("no users")
        for u in rows:
            state = "disabled" if not u.active else ("LOCKED" if u.locked else "active")
            age = (users.now() - u.password_set_at).days
            expired = " (password expired)" if users.password_expired(u) else ""
            typer.echo(f"{u.username:<16} {u.role:<10} {state:<8} {u.full_name}  password {age} d old{expired}")


@user_app.command("log")
def user_log(
    name: Annotated[Optional[str], typer.Argument(help="User id (default: every account).", show_default=False)] = None,
    db: DbOption = None,
) -> None:
    """The keyed accounts trail: every change with old and new values, actor and reason; and whether each account
    still matches it."""
    from fillfinish.people.trail import account_events, account_problem, check_accounts
    from fillfinish.record.names import escape_text

    with _opened(db) as (store, _users):
        rows = account_events(store, name)
        if not rows:
            typer.echo(f"no account changes recorded{f' for {name}' if name else ''}")
        for row in rows:
            ev = row.data
            change = ", ".join(f"{k}: {ev.old.get(k)!r} -> {v!r}" for k, v in sorted(ev.new.items()))
            reason = f" reason: {ev.reason}" if ev.reason else ""
            typer.echo(escape_text(f"{row.ts:%Y-%m-%d %H:%M:%S} UTC  {ev.user}  {ev.event}  by {row.actor}"
                                   f"{'  ' + change if change else ''}{reason}"))
        problems = [account_problem(store, name)] if name else check_accounts(store).problems
        for problem in filter(None, problems):
            typer.echo(f"NOT MATCHING: {escape_text(problem)}")
        if any(problems):
            raise typer.Exit(1)


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="User id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
    admin: AdminOption = None,
    password_stdin: PasswordStdinOption = False,
    db: DbOption = None,
) -> None:
    """Disable an account (kept for the record; its id is never reused)."""
    _account_change("disable", name, reason, admin, password_stdin, db)


@user_app.command("unlock")
def user_unlock(
    name: Annotated[str, typer.Argument(help="User id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
    admin: AdminOption = None,
    password_stdin: PasswordStdinOption = False,
    db: DbOption = None,
) -> None:
    """Unlock an account locked after repeated failed logins."""
    _account_change("unlock", name, reason, admin, password_stdin, db)


@user_app.command("reset-password")
def user_reset_password(
    name: Annotated[str, typer.Argument(help="User id.")],
    admin: AdminOption = None,
    password_stdin: PasswordStdinOption = False,
    db: DbOption = None,
) -> None:
    """An administrator sets a new password for `name` (admin's password first, then the new one); the owner must
    change it before the first signature."""
    with _opened(db, create=False) as (_store, users):
        actor = _admin_actor(users, admin, password_stdin, f"reset the password of {name}")
        users.set_password(name, read_password(f"New password for {name}", from_stdin=password_stdin, confirm=True),
                           actor=actor, must_change=True)
        typer.echo(f"password of {name} reset by {actor}; {name} must change it before the first signature")


def _account_change(action: str, name: str, reason: str, admin: str | None, stdin: bool, db: str | None) -> None:
    """disable or unlock `name`, as an authenticated admin (or the OS login while no admin exists)."""
    with _opened(db, create=False) as (_store, users):
        actor = _admin_actor(users, admin, stdin, f"{action} user {name}")
        getattr(users, action)(name, actor=actor, reason=reason)
        typer.echo(f"user {name} {action}{'d' if action.endswith('e') else 'ed'} by {actor}")


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="User id.")],
    password_stdin: PasswordStdinOption = False,
    db: DbOption = None,
) -> None:
    """Change your own password (also when it has expired or was set by an administrator): the current password
    first, then the new one."""
    with _opened(db, create=False) as (_store, users):
        old = read_password("Current password", from_stdin=password_stdin)
        users.change_password(name, old, read_password("New password", from_stdin=password_stdin, confirm=True))
        typer.echo(f"password of {name} changed")
