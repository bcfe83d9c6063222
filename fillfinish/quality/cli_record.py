"""`fillfinish record purge|hold|backup|restore`: retention, legal hold and backups of the record."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from fillfinish.record.vocabulary import typed
from fillfinish.quality.cli_common import BatchArg, DbOption, StdinOption, UserOption, ask_password, echo, fail, opened
from fillfinish.record.cli import resolve_db_url
from fillfinish.record.store import RecordError, safe_url


def register_record_commands(record_app: typer.Typer) -> None:
    """Add purge, hold, backup and restore to `fillfinish record` (called once by fillfinish/cli.py)."""
    record_app.command("purge")(record_purge)
    record_app.command("hold")(record_hold)
    record_app.command("backup")(record_backup)
    record_app.command("restore")(record_restore)


def record_purge(
    batch: BatchArg,
    user: UserOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. the retention SOP).")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Remove a batch past its retention date, leaving a signed tombstone (refused before the date or on hold)."""
    from fillfinish.quality.purge import purge

    with opened(db) as (store, users):
        tomb, sig = purge(store, batch, user=user, password=ask_password(user, password_stdin),
                          today=dt.datetime.now(dt.UTC).date(), reason=reason, users=users)
        echo(f"batch {batch} purged ({typed(tomb).entries} entries); tombstone REG-PURGE entry {tomb.seq}, "
             f"signed by {typed(sig).name} (entry {sig.seq}); `fillfinish record verify` shows it as purged")


def record_hold(
    batch: BatchArg,
    user: UserOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the hold is placed (or released).")],
    release_hold: Annotated[bool, typer.Option("--release", help="Release the legal hold instead of placing it.")] = False,
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Place a legal hold on a batch (purge refused while it lasts), or release it with --release."""
    from fillfinish.quality.purge import place_hold, release_hold as lift

    with opened(db) as (store, users):
        password = ask_password(user, password_stdin)
        action = lift if release_hold else place_hold
        entry = action(store, batch, reason, user=user, password=password, users=users)
        echo(f"legal hold on {batch} {'released' if release_hold else 'placed'} by {user} "
             f"(REG-PURGE entry {entry.seq})")


def record_backup(file: Annotated[Path, typer.Argument(help="New backup file (never overwritten).")],
                  db: DbOption = None) -> None:
    """A consistent copy of the whole record while batches run (SQLite online backup; pg_dump for PostgreSQL)."""
    from fillfinish.quality.backup import BackupError, backup

    url = resolve_db_url(db)
    try:
        backup(url, file)
    except (BackupError, RecordError) as exc:
        fail(str(exc))
    echo(f"backup of {safe_url(url)} written to {file}; test it with `fillfinish record restore {file} --db NEW`")


def record_restore(file: Annotated[Path, typer.Argument(help="Backup file made by `record backup`.")],
                   db: Annotated[str, typer.Option("--db", help="New, empty target database URL or SQLite path.")]) -> None:
    """Restore a backup into a new database and verify it (exit 1 when the restored record does not verify)."""
    from fillfinish.quality.backup import BackupError, restore

    url = resolve_db_url(db)
    try:
        report = restore(file, url)
    except (BackupError, RecordError) as exc:
        fail(str(exc))
    for line in report.lines():
        echo(line)
    if not report.ok:
        fail(f"the restored record in {safe_url(url)} does not verify")
    echo(f"restored into {safe_url(url)} and verified")
