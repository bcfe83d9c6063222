"""`fillfinish viable|mediafill|deviation|qa ...` and `fillfinish record purge|hold|backup|restore`: the CLI only
parses, calls a quality service and prints. Passwords are asked on the terminal (hidden, getpass) or read as one line
per person from stdin with --password-stdin; never given on the command line. Every refusal is one line on stderr and
exit 1 (usage errors exit 2), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from sqlalchemy.exc import SQLAlchemyError

from fillfinish.people.users import DEFAULT_MAX_AGE_DAYS, PeopleError, UserStore
from fillfinish.quality import deviations as devs
from fillfinish.quality import viable
from fillfinish.record.cli import resolve_db_url
from fillfinish.record.store import RecordError, RecordStore, safe_url

viable_app = typer.Typer(name="viable", help="Viable (microbial) monitoring results: enter, verify, list.",
                         no_args_is_help=True, add_completion=False)
mediafill_app = typer.Typer(name="mediafill", help="Media-fill (APS) outcome after incubation.", no_args_is_help=True,
                            add_completion=False)
deviation_app = typer.Typer(name="deviation", help="Deviations: list, show, work through 8D, close (QA).",
                            no_args_is_help=True, add_completion=False)
qa_app = typer.Typer(name="qa", help="QA review, release and rejection of batches.", no_args_is_help=True,
                     add_completion=False)

DbOption = Annotated[Optional[str], typer.Option("--db", help="Database URL or SQLite path (env FILLFINISH_DB).",
                                                 show_default=False)]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read the password (one line per person) from "
                                           "stdin instead of asking on the terminal.")]
UserOption = Annotated[str, typer.Option("--user", help="Your user id (you authenticate with your password).")]
BatchArg = Annotated[str, typer.Argument(help="Batch id, e.g. B-20261130-0001.")]
NumberArg = Annotated[str, typer.Argument(help="Deviation number, e.g. DEV-2026-0001.")]



def _echo(text: object, err: bool = False) -> None:
    """Print one line; record text is escaped so a stored newline or escape code cannot fake a line (issue 6.7)."""
    from fillfinish.record.names import escape_text

    typer.echo(escape_text(text), err=err)

def _fail(message: str) -> NoReturn:
    """Print `message` on stderr as one line and exit 1."""
    _echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(1)


def _password(user: str, from_stdin: bool) -> str:
    """One password: the next stdin line with --password-stdin, else a hidden prompt on the terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            _fail(f"--password-stdin: no line on stdin for the password of {user}")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        _fail(f"no terminal to ask for the password of {user}; pass it on stdin with --password-stdin")
    return getpass.getpass(f"Password for {user}: ")


def _max_age() -> float:
    """Password age limit in days ($FILLFINISH_PASSWORD_MAX_AGE_DAYS, default 90)."""
    try:
        return float(os.environ.get("FILLFINISH_PASSWORD_MAX_AGE_DAYS", DEFAULT_MAX_AGE_DAYS))
    except ValueError:
        _fail("FILLFINISH_PASSWORD_MAX_AGE_DAYS is not a number of days")


@contextmanager
def _opened(db: str | None, *, read_only: bool = False) -> Iterator[tuple[RecordStore, UserStore]]:
    """Open the existing record and its users; quality/people/record/database errors become one line and exit 1.
    `read_only`: inspect only (qa review), nothing in the database changes (issue 7.6)."""
    url = resolve_db_url(db)
    try:
        store = RecordStore(url, create=False, read_only=read_only)
    except RecordError as exc:
        _fail(str(exc))
    try:
        yield store, UserStore(store, max_age_days=_max_age())
    except (PeopleError, RecordError) as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"database error on {safe_url(url)}: {str(exc).splitlines()[0]}")
    finally:
        store.close()


def _date(value: str, option: str) -> dt.date:
    """A YYYY-MM-DD option value, or a one-line refusal naming the option."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{option}: {value!r} is not a date; allowed: YYYY-MM-DD")


# ---------------------------------------------------------------------------------------------------- viable
@viable_app.command("add")
def viable_add(
    batch: BatchArg,
    sample: Annotated[str, typer.Argument(help="Planned sample id (SP-n, AA-n, GP-n, CP-n; see `viable list`).")],
    cfu: Annotated[int, typer.Option("--cfu", min=0, help="Colony-forming units counted.")],
    incubation_start: Annotated[str, typer.Option("--incubation-start", help="ISO-8601 time (UTC unless an offset "
                                                  "is given).")],
    incubation_end: Annotated[str, typer.Option("--incubation-end", help="ISO-8601 time.")],
    medium_lot: Annotated[str, typer.Option("--medium-lot", help="Lot of the culture medium.")],
    user: UserOption,
    organism: Annotated[str, typer.Option("--organism", help="Organism identified (grade A/B growth).")] = "",
    correction: Annotated[str, typer.Option("--correction", help="Why a result already entered is superseded.")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Enter one sample's result as its reader (signed 'performed'); a second person verifies it."""
    with _opened(db) as (store, users):
        result, sig = viable.add_result(store, batch, sample, cfu=cfu, incubation_start=incubation_start,
                                        incubation_end=incubation_end, medium_lot=medium_lot, user=user,
                                        password=_password(user, password_stdin), organism=organism,
                                        correction=correction, users=users)
        d = result.data
        _echo(f"{sample} ({d['location']}, grade {d['grade']}): {d['cfu']} CFU, {d['level']} "
                   f"({d['limits']['text']}); entry {result.seq}, signed by {sig.data['name']} (entry {sig.seq})")
        if d["level"] == "action":
            _echo("action excursion: a deviation was opened; see `fillfinish deviation list " + batch + "`")


@viable_app.command("verify")
def viable_verify(batch: BatchArg, sample: Annotated[str, typer.Argument(help="Sample id.")], user: UserOption,
                  password_stdin: StdinOption = False, db: DbOption = None) -> None:
    """Verify a result entered by someone else (QA or supervisor; signed 'reviewed')."""
    with _opened(db) as (store, users):
        entry, sig = viable.verify_result(store, batch, sample, user=user, password=_password(user, password_stdin),
                                          users=users)
        _echo(f"{sample} verified by {sig.data['name']} (entry {entry.seq}, signature entry {sig.seq})")


@viable_app.command("list")
def viable_list(batch: BatchArg, db: DbOption = None) -> None:
    """Every planned sample of the batch with its limits, result and verification."""
    with _opened(db) as (store, _users):
        st = viable.status(store.batch(batch), store.entries(batch))
        for s in st.samples:
            p, d = s.planned, (s.result.data if s.result else {})
            result = f"{d.get('cfu')} CFU {s.level} (reader {d.get('reader')})" if s.result else "NO RESULT"
            check = f"verified by {s.verified.data.get('verified_by')}" if s.verified else (
                "NOT VERIFIED" if s.result else "")
            _echo(f"{p.sample_id:<5} {viable.SAMPLE_TYPES[p.sample_type][1]:<13} grade {p.grade}  "
                       f"{p.location:<22} limit {s.limits.text():<30} {result}  {check}")
        for line in st.blockers():
            _echo(f"release waits: {line}")


# ---------------------------------------------------------------------------------------------------- media fill
@mediafill_app.command("result")
def mediafill_result(
    batch: BatchArg,
    incubated: Annotated[int, typer.Option("--incubated", min=0, help="Units incubated.")],
    growth: Annotated[int, typer.Option("--growth", min=0, help="Units with growth (turbid).")],
    reader: Annotated[str, typer.Option("--reader", help="User id of the person who read the units.")],
    verifier: Annotated[str, typer.Option("--verifier", help="User id of the second person (QA or supervisor).")],
    not_incubated: Annotated[int, typer.Option("--not-incubated", min=0, help="Units not incubated.")] = 0,
    justification: Annotated[str, typer.Option("--justification", help="Why units were not incubated.")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Record a media fill's outcome, signed by reader and verifier (stdin: reader's line, then verifier's)."""
    from fillfinish.quality.mediafill import record_result

    with _opened(db) as (store, users):
        reader_pw = _password(reader, password_stdin)
        verifier_pw = _password(verifier, password_stdin)
        out = record_result(store, batch, incubated=incubated, growth=growth, not_incubated=not_incubated,
                            justification=justification, reader=reader, reader_password=reader_pw,
                            verifier=verifier, verifier_password=verifier_pw, users=users)
        d = out.result.data
        verdict = "PASSED" if out.passed else "FAILED: " + "; ".join(d["reasons"])
        _echo(f"media fill {batch} on {d['line_id']}: {verdict} (filled {d['units_filled']}, incubated "
                   f"{d['incubated']}, growth {d['growth']}, not incubated {d['not_incubated']}); entry "
                   f"{out.result.seq}, registry entry REG-MEDIAFILL/{out.registry.seq}")
        if not out.passed:
            raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------------- deviations
def _dev_line(dev: devs.Deviation) -> str:
    """One line per deviation for lists."""
    cls = dev.fields.get("classification") or "unclassified"
    return (f"{dev.number or '(unnumbered)':<14} {dev.batch_id:<16} {cls:<12} {dev.state():<45} {dev.title}")


@deviation_app.command("list")
def deviation_list(
    batch: Annotated[Optional[str], typer.Argument(help="Batch id (default: every batch).")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only open deviations.")] = False,
    db: DbOption = None,
) -> None:
    """Deviations with their number, classification and 8D state (new alarms are numbered and grouped first)."""
    with _opened(db) as (store, _users):
        ids = [batch] if batch else [h.batch_id for h in store.batches() if store.entries(h.batch_id, kinds=["deviation"])]
        shown = 0
        for bid in ids:
            for dev in devs.sync(store, bid):
                if open_only and not dev.is_open:
                    continue
                _echo(_dev_line(dev))
                shown += 1
        if not shown:
            _echo("no deviations")


@deviation_app.command("show")
def deviation_show(number: NumberArg, db: DbOption = None) -> None:
    """One deviation: the alarms it groups, its 8D fields, classification, impact, who investigated, closure."""
    with _opened(db) as (store, _users):
        dev = devs.get(store, number)
        _echo(f"{dev.number}  batch {dev.batch_id}  {dev.state()}")
        for m in dev.members:
            _echo(f"  alarm entry {m.data.get('alarm_entry')} at {m.ts:%Y-%m-%d %H:%M:%S} UTC: "
                       f"{m.data.get('message') or m.data.get('source')}")
        for name in devs.ALL_FIELDS:
            label = devs.FIELDS_8D.get(name, name)
            _echo(f"  {label:<42} {dev.fields.get(name) or '-'}")
        _echo(f"  investigators: {', '.join(sorted(dev.investigators)) or '-'}")


@deviation_app.command("update")
def deviation_update(
    number: NumberArg,
    user: UserOption,
    d1: Annotated[str, typer.Option("--d1", help="D1 team.")] = "",
    d2: Annotated[str, typer.Option("--d2", help="D2 problem description.")] = "",
    d3: Annotated[str, typer.Option("--d3", help="D3 containment.")] = "",
    d4: Annotated[str, typer.Option("--d4", help="D4 root cause.")] = "",
    d5: Annotated[str, typer.Option("--d5", help="D5 corrective action.")] = "",
    d6: Annotated[str, typer.Option("--d6", help="D6 verification of the corrective action.")] = "",
    d7: Annotated[str, typer.Option("--d7", help="D7 preventive action.")] = "",
    d8: Annotated[str, typer.Option("--d8", help="D8 closure and recognition.")] = "",
    classification: Annotated[str, typer.Option("--classification", help="minor, major or critical.")] = "",
    impact: Annotated[str, typer.Option("--impact", help="Impact on the batch.")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Record 8D fields as an investigator (old and new values are kept)."""
    given = dict(zip(devs.FIELDS_8D, (d1, d2, d3, d4, d5, d6, d7, d8), strict=True))
    given.update(classification=classification, impact=impact)
    values = {k: v for k, v in given.items() if v.strip()}
    with _opened(db) as (store, users):
        entry = devs.update(store, number, values, user=user, password=_password(user, password_stdin), users=users)
        dev = devs.get(store, number)
        _echo(f"{number} updated by {user} (entry {entry.seq}): {', '.join(entry.data['changes'])}; {dev.state()}")


@deviation_app.command("close")
def deviation_close(number: NumberArg, user: UserOption,
                    comment: Annotated[str, typer.Option("--comment", help="Closure comment.")] = "",
                    password_stdin: StdinOption = False, db: DbOption = None) -> None:
    """QA closes a deviation whose 8D is complete, by signature (not one of its investigators)."""
    with _opened(db) as (store, users):
        closed, sig = devs.close(store, number, user=user, password=_password(user, password_stdin), comment=comment,
                                 users=users)
        _echo(f"{number} closed by {sig.data['name']} (entry {closed.seq}, signature entry {sig.seq})")


# ---------------------------------------------------------------------------------------------------- qa
@qa_app.command("review")
def qa_review(batch: BatchArg, db: DbOption = None) -> None:
    """Review by exception: checks, exceptions, viable results, deviations, signatures, what blocks release."""
    from fillfinish.people.signatures import manifestations
    from fillfinish.quality.release import readiness
    from fillfinish.record.export.summary import load_snapshot, review

    with _opened(db, read_only=True) as (store, _users):  # a review changes nothing (deviation numbers come
        summary = review(load_snapshot(store, batch))       # with `deviation list|show|update`)
        state = readiness(store, batch)
        _echo(f"Batch {batch}: final state {summary.final_state}; disposition {summary.verdict or '-'}")
        _echo(f"QA decision: {summary.qa_decision_text()}")
        _echo(f"Integrity: {state.integrity}")
        _echo("Checks:")
        for c in summary.checks:
            _echo(f"  [{c.status:<9}] {c.name}: {c.detail}")
        _echo(f"Exceptions ({len(summary.exceptions)}):")
        for item in summary.exceptions:
            detail = f" - {item.detail}" if item.detail else ""
            _echo(f"  entry {item.seq:<5} {item.kind:<15} {item.title}{detail}")
        sigs = manifestations(store, batch)
        _echo(f"Signatures ({len(sigs)}):")
        for m in sigs:
            _echo(f"  entry {m.seq:<5} {m.line()}")
        if state.performers:
            _echo(f"Performed by: {', '.join(sorted(state.performers))} (may not release)")
        if state.ready:
            _echo("Release: ready for QA release")
        else:
            _echo("Release: BLOCKED")
            for reason in state.blockers:
                _echo(f"  - {reason}")


@qa_app.command("release")
def qa_release(
    batch: BatchArg,
    user: UserOption,
    expiry: Annotated[str, typer.Option("--expiry", help="Product expiry date YYYY-MM-DD (mandatory): sets the "
                                        "retention date, the latest of the retention rules.")],
    comment: Annotated[str, typer.Option("--comment", help="Release comment (signature reason).")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Release the batch with a QA electronic signature (refused with every reason when not allowed)."""
    from fillfinish.quality.release import release

    d, result = _decide(release, batch, user, expiry, password_stdin, db, comment=comment)
    _echo(f"batch {batch} released by {d['name']} ({user}): {d['verdict']}; signature entry "
          f"{result.signature.seq}, release entry {result.release.seq}")
    _echo(f"keep the record until {d['retention_until']} (" +
          "; ".join(f"{k}: {v}" for k, v in d["retention_rules"].items()) + ")")


@qa_app.command("reject")
def qa_reject(
    batch: BatchArg,
    user: UserOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the batch is rejected.")],
    expiry: Annotated[str, typer.Option("--expiry", help="Product expiry date YYYY-MM-DD (sets the retention date).")],
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Reject the batch with a QA electronic signature."""
    from fillfinish.quality.release import reject

    d, result = _decide(reject, batch, user, expiry, password_stdin, db, reason=reason)
    _echo(f"batch {batch} rejected by {d['name']} ({user}): {reason}; signature entry {result.signature.seq}, "
          f"rejection entry {result.release.seq}; keep the record until {d['retention_until']}")


def _decide(decision: Any, batch: str, user: str, expiry: str, password_stdin: bool, db: Optional[str],
            **extra: Any) -> tuple[dict[str, Any], Any]:
    """Run the QA `decision` (release or reject) for `batch` with the user's signature; return its data and result.

    Both decisions first bring the batch's deviations up to date, so a decision never misses a newly raised one.
    """
    expiry_date = _date(expiry, "--expiry")
    with _opened(db) as (store, users):
        devs.sync(store, batch)
        result = decision(store, batch, user, _password(user, password_stdin), users=users, expiry=expiry_date,
                          **extra)
        return result.release.data, result


# ---------------------------------------------------------------------------------------------------- record
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

    with _opened(db) as (store, users):
        tomb, sig = purge(store, batch, user=user, password=_password(user, password_stdin),
                          today=dt.datetime.now(dt.UTC).date(), reason=reason, users=users)
        _echo(f"batch {batch} purged ({tomb.data['entries']} entries); tombstone REG-PURGE entry {tomb.seq}, "
                   f"signed by {sig.data['name']} (entry {sig.seq}); `fillfinish record verify` shows it as purged")


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

    with _opened(db) as (store, users):
        password = _password(user, password_stdin)
        action = lift if release_hold else place_hold
        entry = action(store, batch, reason, user=user, password=password, users=users)
        _echo(f"legal hold on {batch} {'released' if release_hold else 'placed'} by {user} "
                   f"(REG-PURGE entry {entry.seq})")


def record_backup(file: Annotated[Path, typer.Argument(help="New backup file (never overwritten).")],
                  db: DbOption = None) -> None:
    """A consistent copy of the whole record while batches run (SQLite online backup; pg_dump for PostgreSQL)."""
    from fillfinish.quality.backup import BackupError, backup

    url = resolve_db_url(db)
    try:
        backup(url, file)
    except (BackupError, RecordError) as exc:
        _fail(str(exc))
    _echo(f"backup of {safe_url(url)} written to {file}; test it with `fillfinish record restore {file} --db NEW`")


def record_restore(file: Annotated[Path, typer.Argument(help="Backup file made by `record backup`.")],
                   db: Annotated[str, typer.Option("--db", help="New, empty target database URL or SQLite path.")]) -> None:
    """Restore a backup into a new database and verify it (exit 1 when the restored record does not verify)."""
    from fillfinish.quality.backup import BackupError, restore

    url = resolve_db_url(db)
    try:
        report = restore(file, url)
    except (BackupError, RecordError) as exc:
        _fail(str(exc))
    for line in report.lines():
        _echo(line)
    if not report.ok:
        _fail(f"the restored record in {safe_url(url)} does not verify")
    _echo(f"restored into {safe_url(url)} and verified")
