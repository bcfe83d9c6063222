"""`fillfinish user|deviation|qa ...`: accounts, deviation closure and QA review/release from the command line.

The lead mounts `user_app`, `deviation_app` and `qa_app` under the main CLI. Passwords are prompted (hidden) unless
given with --password (for scripts). Every refusal prints one clear line on stderr and exits 1, never a traceback.
"""

from __future__ import annotations

import datetime

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn, Optional

import typer
from sqlalchemy.exc import SQLAlchemyError

from fillfinish.people.release import close_deviation, readiness, release
from fillfinish.people.signatures import manifestations
from fillfinish.people.users import DEFAULT_MAX_AGE_DAYS, ROLES, PeopleError, PermissionDenied, UserStore, os_actor
from fillfinish.record.cli import resolve_db_url
from fillfinish.record.store import RecordError, RecordStore, safe_url

MAX_AGE_ENV = "FILLFINISH_PASSWORD_MAX_AGE_DAYS"

user_app = typer.Typer(name="user", help="User accounts (21 CFR 11.300).", no_args_is_help=True, add_completion=False)
deviation_app = typer.Typer(name="deviation", help="Close deviations (QA).", no_args_is_help=True,
                            add_completion=False)
qa_app = typer.Typer(name="qa", help="QA review and release of batches.", no_args_is_help=True, add_completion=False)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL or SQLite path (env FILLFINISH_DB).",
                                              show_default=False)]
PasswordOption = Annotated[str | None, typer.Option("--password", help="Password (prompted, hidden, when omitted).",
                                                    show_default=False)]
AdminOption = Annotated[str | None, typer.Option("--admin", help="Administrator making the change (required once an "
                                                 "active admin exists).", show_default=False)]
AdminPasswordOption = Annotated[str | None, typer.Option("--admin-password", help="The administrator's password "
                                                         "(prompted when omitted).", show_default=False)]


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
        store = RecordStore(url, create=create, read_only=read_only)
    except RecordError as exc:
        _fail(str(exc))
    try:
        yield store, UserStore(store, max_age_days=max_age)
    except (PeopleError, RecordError) as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"database error on {safe_url(url)}: {str(exc).splitlines()[0]}")
    finally:
        store.close()


def _password(given: str | None, prompt: str, *, confirm: bool = False) -> str:
    """The given password, else a hidden prompt."""
    if given is not None:
        return given
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def _admin_actor(users: UserStore, admin: str | None, admin_password: str | None, what: str) -> str:
    """Who makes an account change: an authenticated admin, or the OS login while no active admin exists (bootstrap)."""
    if admin is None:
        if users.has_admin():
            _fail(f"{what} needs an administrator: give --admin NAME (and its password)")
        return os_actor()
    account = users.authenticate(admin, _password(admin_password, f"Password for {admin}"), purpose=what)
    if account.role != "admin":
        raise PermissionDenied(f"user {admin} has role {account.role}; {what} needs role admin")
    return account.username


# ---------------------------------------------------------------------------------------------------- user
@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User id (lowercase letters, digits, . _ -).")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    full_name: Annotated[str, typer.Option("--full-name", help="Printed name shown on signatures.")],
    password: PasswordOption = None,
    admin: AdminOption = None,
    admin_password: AdminPasswordOption = None,
    db: DbOption = None,
) -> None:
    """Create an account (the first account, while no admin exists, may be created without --admin)."""
    if role not in ROLES:
        _fail(f"--role {role!r} is not allowed; allowed: {', '.join(ROLES)}")
    with _opened(db, create=True) as (_store, users):
        actor = _admin_actor(users, admin, admin_password, f"adding user {name}")
        user = users.add(name, full_name, role, _password(password, f"Password for {name}", confirm=True), actor=actor)
        typer.echo(f"user {user.username} ({user.full_name}, {user.role}) created by {actor}")


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


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="User id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
    admin: AdminOption = None,
    admin_password: AdminPasswordOption = None,
    db: DbOption = None,
) -> None:
    """Disable an account (kept for the record; its id is never reused)."""
    _account_change("disable", name, reason, admin, admin_password, db)


@user_app.command("unlock")
def user_unlock(
    name: Annotated[str, typer.Argument(help="User id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
    admin: AdminOption = None,
    admin_password: AdminPasswordOption = None,
    db: DbOption = None,
) -> None:
    """Unlock an account locked after repeated failed logins."""
    _account_change("unlock", name, reason, admin, admin_password, db)


def _account_change(action: str, name: str, reason: str, admin: str | None, admin_password: str | None,
                    db: str | None) -> None:
    """disable or unlock `name`, as an authenticated admin (or the OS login while no admin exists)."""
    with _opened(db, create=False) as (_store, users):
        actor = _admin_actor(users, admin, admin_password, f"{action} user {name}")
        getattr(users, action)(name, actor=actor, reason=reason)
        typer.echo(f"user {name} {action}{'d' if action.endswith('e') else 'ed'} by {actor}")


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="User id.")],
    old_password: Annotated[str | None, typer.Option("--old-password", show_default=False)] = None,
    new_password: Annotated[str | None, typer.Option("--new-password", show_default=False)] = None,
    db: DbOption = None,
) -> None:
    """Change your own password (also when it has expired)."""
    with _opened(db, create=False) as (_store, users):
        old = _password(old_password, "Current password")
        users.change_password(name, old, _password(new_password, "New password", confirm=True))
        typer.echo(f"password of {name} changed")


# ---------------------------------------------------------------------------------------------------- deviation
@deviation_app.command("close")
def deviation_close(
    batch: Annotated[str, typer.Argument(help="Batch id.")],
    alarm_entry: Annotated[int, typer.Argument(help="Seq of the alarm entry the deviation was opened for.")],
    user: Annotated[str, typer.Option("--user", help="QA user id.")],
    root_cause: Annotated[str, typer.Option("--root-cause", help="Root cause found by the investigation.")],
    capa: Annotated[str, typer.Option("--capa", help="Corrective and preventive action.")],
    password: PasswordOption = None,
    db: DbOption = None,
) -> None:
    """Close an open deviation with root cause and CAPA, signed by QA."""
    with _opened(db) as (store, users):
        closed, sig = close_deviation(store, batch, alarm_entry, user, _password(password, f"Password for {user}"),
                                      root_cause, capa, users=users)
        typer.echo(f"deviation for alarm entry {alarm_entry} closed (entry {closed.seq}), signed by "
                   f"{sig.data['name']} (entry {sig.seq})")


# ---------------------------------------------------------------------------------------------------- qa
@qa_app.command("review")
def qa_review(batch: Annotated[str, typer.Argument(help="Batch id.")], db: DbOption = None) -> None:
    """Review by exception: compliance checks, exceptions, signatures, and what blocks release."""
    from fillfinish.record.export.summary import load_snapshot, review

    with _opened(db, read_only=True) as (store, _users):
        summary = review(load_snapshot(store, batch))
        state = readiness(store, batch)
        typer.echo(f"Batch {batch}: final state {summary.final_state}; disposition {summary.verdict or '-'}")
        typer.echo(f"Integrity: {state.integrity}")
        typer.echo("Checks:")
        for c in summary.checks:
            typer.echo(f"  [{c.status:<9}] {c.name}: {c.detail}")
        typer.echo(f"Exceptions ({len(summary.exceptions)}):")
        for item in summary.exceptions:
            detail = f" - {item.detail}" if item.detail else ""
            typer.echo(f"  entry {item.seq:<5} {item.kind:<15} {item.title}{detail}")
        sigs = manifestations(store, batch)
        typer.echo(f"Signatures ({len(sigs)}):")
        for m in sigs:
            typer.echo(f"  entry {m.seq:<5} {m.line()}")
        if state.performers:
            typer.echo(f"Performed by: {', '.join(sorted(state.performers))} (may not release)")
        if state.ready:
            typer.echo("Release: ready for QA release")
        else:
            typer.echo("Release: BLOCKED")
            for reason in state.blockers:
                typer.echo(f"  - {reason}")


@qa_app.command("release")
def qa_release(
    batch: Annotated[str, typer.Argument(help="Batch id.")],
    user: Annotated[str, typer.Option("--user", help="QA user id.")],
    password: PasswordOption = None,
    comment: Annotated[str, typer.Option("--comment", help="Release comment (signature reason).")] = "",
    expiry: Annotated[Optional[str], typer.Option("--expiry", help="Product expiry date YYYY-MM-DD: records the "
                                                   "retention date (latest of the retention rules).")] = None,
    db: DbOption = None,
) -> None:
    """Release the batch with a QA electronic signature (refused with every reason when not allowed)."""
    try:
        expiry_date = datetime.date.fromisoformat(expiry) if expiry else None
    except ValueError:
        typer.echo(f"error: --expiry: {expiry!r} is not a date; allowed: YYYY-MM-DD", err=True)
        raise typer.Exit(1) from None
    with _opened(db) as (store, users):
        result = release(store, batch, user, _password(password, f"Password for {user}"), comment=comment,
                         users=users, expiry=expiry_date)
        d = result.release.data
        typer.echo(f"batch {batch} released by {d['name']} ({user}): {d['verdict']}; signature entry "
                   f"{result.signature.seq}, release entry {result.release.seq}")
        if "retention_until" in d:
            typer.echo(f"keep the record until {d['retention_until']} (" +
                       "; ".join(f"{k}: {v}" for k, v in d["retention_rules"].items()) + ")")
