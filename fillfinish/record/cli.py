"""`fillfinish record ...` commands: verify the record's integrity, show one batch record, list the batches.

The lead mounts `app` under the main CLI. Every bad input (URL, missing file, unknown batch) gives one clear line on
stderr and exit code 1, never a traceback; typer's own usage errors exit 2.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError

from fillfinish.record.names import escape_text
from fillfinish.record.render import render_text, to_json
from fillfinish.record.store import RecordError, RecordStore, UnknownBatchError, safe_url
from fillfinish.record.verify import verify

DEFAULT_DB_URL = "sqlite:///fillfinish.db"
DB_ENV = "FILLFINISH_DB"

app = typer.Typer(
    name="record",
    help="The electronic batch record: verify its integrity, show a batch record, list batches.",
    no_args_is_help=True,
    add_completion=False,
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=f"Database URL or SQLite file path (env {DB_ENV}; default {DEFAULT_DB_URL}).",
        show_default=False,
    ),
]

DEFAULT_JOBS = max(1, min(64, os.cpu_count() or 1))
"""`record verify --jobs` default: one worker process per core (a record under 200,000 ledger rows uses none)."""


def resolve_db_url(cli_value: str | None) -> str:
    """The record database URL: --db value, else $FILLFINISH_DB, else sqlite:///fillfinish.db; a bare path is SQLite."""
    value = (cli_value or os.environ.get(DB_ENV) or DEFAULT_DB_URL).strip()
    if "://" not in value:
        return f"sqlite:///{value}"
    return value


def _fail(message: str) -> NoReturn:
    """Print `message` to stderr and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def _opened(db: str | None, key: str | None = None) -> Iterator[RecordStore]:
    """Open an existing record (never create one) and turn record/database errors into a clear exit 1."""
    url = resolve_db_url(db)
    try:
        store = RecordStore(url, create=False, key=key, read_only=True)  # inspect only: nothing in the database changes
    except RecordError as exc:
        _fail(str(exc))
    try:
        yield store
    except UnknownBatchError as exc:
        known = _known(store)
        _fail(f"{exc}; known batches: {known}" if known else f"{exc}; the record has no batches")
    except RecordError as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"database error on {safe_url(url)}: {str(exc).splitlines()[0]}")
    finally:
        store.close()


def _known(store: RecordStore, limit: int = 10) -> str:
    """Up to `limit` batch ids for an 'unknown batch' message."""
    try:
        ids = [header.batch_id for header in store.batches()]
    except (RecordError, SQLAlchemyError):
        return ""
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(ids[-limit:]) + more


def _parse_anchor(value: str | None) -> tuple[int, str] | None:
    """'GLOBAL_SEQ:HASH' -> (int, hash); a usage error (exit 2) when malformed."""
    if value is None:
        return None
    seq_text, _, digest = value.partition(":")
    digest = digest.strip().lower()
    if not seq_text.strip().isdigit() or int(seq_text) < 1 or len(digest) != 64 or not all(
        c in "0123456789abcdef" for c in digest
    ):
        raise typer.BadParameter(f"expected GLOBAL_SEQ:SHA256 (e.g. 42:3fa9...64 hex digits), got {value!r}",
                                 param_hint="--anchor")
    return int(seq_text), digest


@app.command("verify")
def verify_command(
    batch: Annotated[str | None, typer.Argument(help="Batch id (default: all batches).", show_default=False)] = None,
    db: DbOption = None,
    anchor: Annotated[
        str | None,
        typer.Option("--anchor", help="LINE_SEQ:HASH of this line's ledger head noted earlier; detects cut-off "
                                      "records.", show_default=False),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="Site key file (env FILLFINISH_SITE_KEY; default beside a SQLite database). "
                                   "Without it the MACs, signature proofs and witnesses are not checked.",
                     show_default=False),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=64, help="Worker processes for a large record "
                                      "(default: this machine's cores).")] = DEFAULT_JOBS,
) -> None:
    """Check the hash chains, ledgers, MACs, signatures and accounts; exit 0 when intact, 1 when not (naming the first
    bad entry of each batch); says plainly what it could not check without the site key."""
    expected = _parse_anchor(anchor)
    with _opened(db, key) as store:
        report = verify(store, batch, anchor=expected, jobs=jobs)
        if not report.batches:
            typer.echo(f"no batches in {store.url}")
        for line in report.lines():
            typer.echo(escape_text(line))
        if not report.ok:
            typer.echo("RECORD NOT INTACT", err=True)
            raise typer.Exit(1)
        if report.key_checked:
            typer.echo("record intact")
        else:
            typer.echo("record intact as far as it can be checked without the site key (see NOT CHECKED above)")


@app.command("show")
def show_command(
    batch: Annotated[str, typer.Argument(help="Batch id, e.g. B-20261125-0001.")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Print one batch record for a person (or as JSON), with its integrity status."""
    with _opened(db) as store:
        header = store.batch(batch)
        entries = store.entries(batch)
        result = verify(store, batch).result(batch)
        if as_json:
            doc = to_json(header, entries)
            doc["integrity"] = {
                "ok": result.ok,
                "entries_checked": result.entries_checked,
                "problem": result.problem.describe() if result.problem else None,
            }
            typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
            return
        typer.echo(render_text(header, entries), nl=False)
        if result.ok:
            typer.echo(f"  Integrity      intact ({result.entries_checked} entries verified)")
        else:
            assert result.problem is not None
            typer.echo(f"  Integrity      NOT INTACT: {result.problem.describe()}")


@app.command("list")
def list_command(db: DbOption = None) -> None:
    """List the batches in the record, oldest first."""
    with _opened(db) as store:
        headers = store.batches()
        if not headers:
            typer.echo(f"no batches in {store.url}")
            return
        typer.echo(f"{'batch':<17} {'created (UTC)':<20} {'mode':<11} {'entries':>7}  {'lot':<12} product")
        for header in headers:
            last = store.last_entry(header.batch_id)
            count = last.seq if last else 0
            typer.echo(escape_text(
                f"{header.batch_id:<17} {header.created_at:%Y-%m-%d %H:%M:%S}  {header.mode:<11} {count:>7}  "
                f"{header.lot:<12} {header.product} ({header.product_code})"
            ))


@app.command("export")
def export_command(
    batch: Annotated[str, typer.Argument(help="Batch id, e.g. B-20261125-0001.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="pdf | json | batchml (ISA-88/95 BatchML).",
                                     show_default=False)],
    out: Annotated[str, typer.Option("--out", "-o", help="File to write (replaced atomically).",
                                     show_default=False)],
    db: DbOption = None,
) -> None:
    """Export one batch record as PDF, JSON or BatchML, with its review by exception and integrity check."""
    from pathlib import Path

    from fillfinish.record.export import EXPORT_FORMATS, ExportError, export_batch

    fmt = fmt.strip().lower()
    if fmt not in EXPORT_FORMATS:
        _fail(f"--format {fmt!r} is not supported; allowed: {', '.join(EXPORT_FORMATS)}")
    target = Path(out).expanduser()
    if not out.strip():
        _fail("--out must name a file")
    if target.is_dir():
        _fail(f"--out {out}: is a folder; give a file name")
    if not target.parent.is_dir():
        _fail(f"--out {out}: folder {target.parent} does not exist")
    with _opened(db) as store:
        try:
            snap = export_batch(store, batch, fmt, target)
        except ExportError as exc:
            _fail(str(exc))
        integrity = snap.integrity
        if integrity is not None and not integrity.ok:
            assert integrity.problem is not None
            typer.echo(f"warning: the record of {batch} is NOT INTACT ({integrity.problem.describe()}); "
                       "the export says so", err=True)
        typer.echo(f"{batch}: {fmt} export written to {target} ({target.stat().st_size:,} bytes, "
                   f"{len(snap.entries)} entries)")
