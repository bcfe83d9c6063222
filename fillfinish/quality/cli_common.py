"""What every quality command shares: the --db/--user/--password-stdin options, the one-line refusal, the hidden
password prompt and the opened record with its users (errors become one line and exit 1, never a traceback).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn, Optional

import typer
from sqlalchemy.exc import SQLAlchemyError

from fillfinish.people.users import DEFAULT_MAX_AGE_DAYS, PeopleError, UserStore
from fillfinish.record.cli import resolve_db_url
from fillfinish.record.store import RecordError, RecordStore, safe_url

DbOption = Annotated[Optional[str], typer.Option("--db", help="Database URL or SQLite path (env FILLFINISH_DB).",
                                                 show_default=False)]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read the password (one line per person) from "
                                           "stdin instead of asking on the terminal.")]
UserOption = Annotated[str, typer.Option("--user", help="Your user id (you authenticate with your password).")]
BatchArg = Annotated[str, typer.Argument(help="Batch id, e.g. B-20261130-0001.")]
NumberArg = Annotated[str, typer.Argument(help="Deviation number, e.g. DEV-2026-0001.")]


def echo(text: object, err: bool = False) -> None:
    """Print one line; record text is escaped so a stored newline or escape code cannot fake a line (issue 6.7)."""
    from fillfinish.record.names import escape_text

    typer.echo(escape_text(text), err=err)


def fail(message: str) -> NoReturn:
    """Print `message` on stderr as one line and exit 1."""
    echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(1)


def ask_password(user: str, from_stdin: bool) -> str:
    """One password: the next stdin line with --password-stdin, else a hidden prompt on the terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail(f"--password-stdin: no line on stdin for the password of {user}")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        fail(f"no terminal to ask for the password of {user}; pass it on stdin with --password-stdin")
    return getpass.getpass(f"Password for {user}: ")


def max_age_days() -> float:
    """Password age limit in days ($FILLFINISH_PASSWORD_MAX_AGE_DAYS, default 90)."""
    try:
        return float(os.environ.get("FILLFINISH_PASSWORD_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))
    except ValueError:
        fail("FILLFINISH_PASSWORD_MAX_AGE_DAYS is not a number of days")


@contextmanager
def opened(db: str | None, *, read_only: bool = False) -> Iterator[tuple[RecordStore, UserStore]]:
    """Open the existing record and its users; quality/people/record/database errors become one line and exit 1.
    `read_only`: inspect only (qa review), nothing in the database changes (issue 7.6)."""
    url = resolve_db_url(db)
    try:
        store = RecordStore(url, create=False, read_only=read_only)
    except RecordError as exc:
        fail(str(exc))
    try:
        yield store, UserStore(store, max_age_days=max_age_days())
    except (PeopleError, RecordError) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"database error on {safe_url(url)}: {str(exc).splitlines()[0]}")
    finally:
        store.close()


def option_date(value: str, option: str) -> dt.date:
    """A YYYY-MM-DD option value, or a one-line refusal naming the option."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date; allowed: YYYY-MM-DD")
