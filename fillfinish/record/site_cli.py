"""`fillfinish site init`: create the site key that keys the record (decision 0012) and show its fingerprint.

The key is also created on first use by any command that writes the record; `site init` makes it explicit, e.g.
before several lines share one PostgreSQL database and must all use the same key file (docs/deployment.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fillfinish.record.cli import resolve_db_url
from fillfinish.record.sitekey import KEY_ENV, SiteKeyError, create_key, read_key, resolve_key_path

app = typer.Typer(name="site", help="Site set-up: the site key of the record.", no_args_is_help=True,
                  add_completion=False)


@app.callback()
def _site() -> None:
    """Site set-up commands (a group even while it has one command)."""


@app.command("init")
def init_command(
    key: Annotated[str | None, typer.Option("--key", help=f"Key file to create (env {KEY_ENV}; default beside the "
                                                          "SQLite database).", show_default=False)] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL or SQLite path (env FILLFINISH_DB).",
                                           show_default=False)] = None,
) -> None:
    """Create the site key file (mode 0600, never overwritten) and print where it is and its fingerprint."""
    try:
        path = resolve_key_path(resolve_db_url(db), key)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if path is None:
        typer.echo("error: an in-memory database has no key file; give --key FILE", err=True)
        raise typer.Exit(1)
    try:
        if Path(path).exists():
            existing = read_key(path)
            typer.echo(f"site key already exists: {path} (fingerprint {existing.fingerprint}); it is never replaced")
            return
        created = create_key(path)
    except SiteKeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"site key created: {path} (fingerprint {created.fingerprint}); keep a copy in the site's safe: "
               "without it the record's MACs and signatures cannot be checked")
