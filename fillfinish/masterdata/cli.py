"""`fillfinish recipe import|approve|retire|list|show`, `training add|list`, `material receive|approve|reject|list`,
`cleaning record|list`, `clearance confirm`: the master-data commands. Parse, call the service, print.

Passwords are asked on the terminal (hidden) or read as one line from standard input with `--password-stdin`; never
taken from the command line. Every refusal is one line on stderr and exit 1, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer

from fillfinish.masterdata import MasterDataError

__all__ = ["mount", "parse_materials", "read_password"]

training_app = typer.Typer(help="Training records of people (entered and signed by a trainer).", no_args_is_help=True,
                           pretty_exceptions_enable=False, add_completion=False)
material_app = typer.Typer(help="Material lots: receive into quarantine, QA approve or reject, list.",
                           no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
cleaning_app = typer.Typer(help="Line cleaning entries (signed by the person who cleaned).", no_args_is_help=True,
                           pretty_exceptions_enable=False, add_completion=False)
clearance_app = typer.Typer(help="Line clearance before each batch, confirmed by a second person.",
                            no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

Db = Annotated[Optional[str], typer.Option("--db", help="record database URL or SQLite file (default $FILLFINISH_DB "
                                                        "or sqlite:///fillfinish.db)", show_default=False)]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="read the password as one line from standard "
                                                                      "input (else it is asked on the terminal)")]
User = Annotated[str, typer.Option("--user", help="who signs (their password is asked)")]
Line = Annotated[str, typer.Option("--line", help="line id (the site config's [master_data] line_id)")]


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit 1."""
    typer.echo(f"refused: {message}", err=True)
    raise typer.Exit(1)


def read_password(user: str, password_stdin: bool) -> str:
    """The user's password: one line from standard input with --password-stdin, else a hidden terminal prompt."""
    if password_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise MasterDataError("--password-stdin: no password on standard input")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise MasterDataError(f"no terminal to ask {user}'s password on; give it as one line on standard input "
                              "with --password-stdin")
    return getpass.getpass(f"Password for {user}: ")


def parse_materials(items: list[str] | None, file: Path | None) -> dict[str, str]:
    """`--material KIND=LOT` options and/or a TOML file of `KIND = "LOT"` lines (or a [materials] table)."""
    chosen: dict[str, str] = {}
    if file is not None:
        try:
            doc = tomllib.loads(file.read_text(encoding="utf-8"))  # a materials file, not record data
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise MasterDataError(f"{file}: cannot read the materials file ({exc}); allowed: TOML lines "
                                  "'vial = \"LOT\"'") from None
        table = doc.get("materials", doc)
        for key, value in table.items():
            if not isinstance(value, str):
                raise MasterDataError(f"{file}: {key}: expected a lot id text")
            chosen[key] = value
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise MasterDataError(f"--material '{item}': allowed: KIND=LOT, e.g. vial=V-2026-11")
        chosen[key.strip()] = value.strip()
    return chosen


@contextmanager
def _store(db: str | None, create: bool = True) -> Iterator[Any]:
    """Open the record; master-data, record and people errors become one line and exit 1."""
    from fillfinish.people.users import PeopleError
    from fillfinish.record.cli import resolve_db_url
    from fillfinish.record.store import RecordError, RecordStore

    try:
        with RecordStore(resolve_db_url(db), create=create) as store:
            yield store
    except (MasterDataError, RecordError, PeopleError) as exc:
        _fail(str(exc))


def _date(text: str | None, option: str, default: dt.date | None = None) -> dt.date:
    """A YYYY-MM-DD option (default when not given)."""
    from fillfinish.masterdata.signing import parse_date

    if text is None:
        if default is None:
            _fail(f"{option} is required (YYYY-MM-DD)")
        return default
    try:
        return parse_date(text, option)
    except MasterDataError as exc:
        _fail(str(exc))


def _floor(config: Path | None) -> Any:
    """The site floor from a site config, else the defaults (Annex 1 Table 2)."""
    from fillfinish.config import ConfigError, load_site_config
    from fillfinish.masterdata.settings import SiteFloor

    if config is None:
        return SiteFloor()
    try:
        return load_site_config(config).master_data.floor
    except ConfigError as exc:
        _fail("; ".join(exc.problems))


# ------------------------------------------------------------------------------------------------------- recipes
def recipe_import(file: Annotated[Path, typer.Argument(help="recipe TOML file")], user: User,
                  password_stdin: PasswordStdin = False, db: Db = None) -> None:
    """Store a recipe file as a draft version (SHA-256 of its bytes, author = the signing user)."""
    from fillfinish.masterdata.recipes_control import import_recipe

    with _store(db) as store:
        v = import_recipe(store, file, user, read_password(user, password_stdin))
    typer.echo(f"imported {v.name} version {v.version} as draft (sha256 {v.sha256[:12]}, author {v.author})")


def recipe_approve(name: Annotated[str, typer.Argument(help="recipe name")],
                   version: Annotated[int, typer.Argument(help="recipe version")], user: User,
                   effective: Annotated[Optional[str], typer.Option(help="effective from YYYY-MM-DD (default "
                                                                         "today)")] = None,
                   reason: Annotated[str, typer.Option(help="approval note")] = "",
                   config: Annotated[Optional[Path], typer.Option(help="site config (its [master_data.floor]; "
                                                                       "default: Annex 1 floor)")] = None,
                   password_stdin: PasswordStdin = False, db: Db = None) -> None:
    """QA approves a draft version (not its author); refused when looser than the site floor."""
    from fillfinish.masterdata.recipes_control import approve_recipe

    day = _date(effective, "--effective", dt.datetime.now(dt.UTC).date())
    floor = _floor(config)
    with _store(db) as store:
        v = approve_recipe(store, name, version, user, read_password(user, password_stdin), effective_from=day,
                           floor=floor, reason=reason)
    typer.echo(f"approved {v.name} version {v.version} (sha256 {v.sha256[:12]}) by {v.approved_by}, effective "
               f"from {v.effective_from}")


def recipe_retire(name: Annotated[str, typer.Argument(help="recipe name")],
                  version: Annotated[int, typer.Argument(help="recipe version")], user: User,
                  reason: Annotated[str, typer.Option(help="why it is retired")],
                  password_stdin: PasswordStdin = False, db: Db = None) -> None:
    """QA retires a version: it can no longer run a batch."""
    from fillfinish.masterdata.recipes_control import retire_recipe

    with _store(db) as store:
        v = retire_recipe(store, name, version, user, read_password(user, password_stdin), reason)
    typer.echo(f"retired {v.name} version {v.version}")


def recipe_list(db: Db = None) -> None:
    """Every recipe version in the record with its status, hash, author and approver."""
    from fillfinish.masterdata.recipes_control import versions

    with _store(db, create=False) as store:
        found = sorted(versions(store).values(), key=lambda v: (v.name, v.version))
    if not found:
        typer.echo("no recipe in the record (`fillfinish recipe import FILE`)")
    for v in found:
        approval = f"approved by {v.approved_by}, effective {v.effective_from}" if v.approved_by else ""
        typer.echo(f"{v.name:<14} v{v.version:<3} {v.status:<9} {v.mode:<11} sha256 {v.sha256[:12]}  author "
                   f"{v.author}  {approval}".rstrip())


def recipe_show(name: Annotated[str, typer.Argument(help="recipe name")],
                version: Annotated[Optional[int], typer.Argument(help="version (default: the newest)")] = None,
                text: Annotated[bool, typer.Option("--text", help="print the stored file text")] = False,
                db: Db = None) -> None:
    """One recipe version: its state as JSON, and with --text the exact stored file."""
    from fillfinish.masterdata.recipes_control import versions

    with _store(db, create=False) as store:
        found = [v for v in versions(store).values() if v.name == name and (version is None or v.version == version)]
    if not found:
        _fail(f"recipe {name}{'' if version is None else f' version {version}'} is not in the record")
    v = max(found, key=lambda x: x.version)
    typer.echo(v.text if text else json.dumps(v.summary(), indent=2))


# ------------------------------------------------------------------------------------------------------- training
@training_app.command("add")
def training_add(user: Annotated[str, typer.Argument(help="the trained person's user id")],
                 what: Annotated[str, typer.Option(help="procedure, recipe, gowning or mediafill")],
                 valid_until: Annotated[str, typer.Option(help="last valid day YYYY-MM-DD")],
                 trainer: Annotated[str, typer.Option(help="the trainer who signs (supervisor or QA)")],
                 subject: Annotated[str, typer.Option(help="SOP id, recipe name or media-fill reference")] = "",
                 trained_on: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD (default today)")] = None,
                 password_stdin: PasswordStdin = False, db: Db = None) -> None:
    """Record a training (or a media-fill participation) of a user, signed by the trainer."""
    from fillfinish.masterdata.training import add_training

    on = _date(trained_on, "--trained-on", dt.datetime.now(dt.UTC).date())
    until = _date(valid_until, "--valid-until")
    with _store(db) as store:
        t = add_training(store, user, what, subject, on, until, trainer, read_password(trainer, password_stdin))
    typer.echo(f"recorded: {t.line()}")


@training_app.command("list")
def training_list(user: Annotated[Optional[str], typer.Argument(help="only this user")] = None, db: Db = None) -> None:
    """Training records (all, or of one user)."""
    from fillfinish.masterdata.training import records

    with _store(db, create=False) as store:
        found = records(store, user)
    if not found:
        typer.echo("no training recorded")
    for t in found:
        typer.echo(t.line())


# ------------------------------------------------------------------------------------------------------- materials
@material_app.command("receive")
def material_receive(
    lot: Annotated[str, typer.Argument(help="our lot id, e.g. V-2026-11")],
    material: Annotated[str, typer.Option(help="bulk, vial, stopper, cap, tips or media")],
    supplier: Annotated[str, typer.Option(help="supplier name")],
    supplier_lot: Annotated[str, typer.Option(help="the supplier's lot number")],
    quantity: Annotated[float, typer.Option(help="quantity received (mL for bulk/media, else pieces)")],
    expiry: Annotated[str, typer.Option(help="expiry YYYY-MM-DD")],
    certificate: Annotated[str, typer.Option(help="certificate of analysis/conformity reference")],
    user: User,
    animal_origin_free: Annotated[Optional[bool], typer.Option("--aof/--not-aof", help="animal-origin-free "
                                                               "statement of the supplier")] = None,
    concentration: Annotated[Optional[float], typer.Option(help="protein bulk concentration, mg/mL")] = None,
    product: Annotated[Optional[str], typer.Option(help="product code the bulk is for")] = None,
    sterilisation_cycle: Annotated[Optional[str], typer.Option(help="tips: sterilisation cycle id")] = None,
    password_stdin: PasswordStdin = False, db: Db = None,
) -> None:
    """Receive a lot into quarantine (it cannot be used until QA approves it)."""
    from fillfinish.masterdata.materials import receive

    day = _date(expiry, "--expiry")
    with _store(db) as store:
        got = receive(store, lot=lot, material=material, supplier=supplier, supplier_lot=supplier_lot,
                      quantity=quantity, expiry=day, certificate=certificate, user=user,
                      password=read_password(user, password_stdin), animal_origin_free=animal_origin_free,
                      concentration_mg_ml=concentration, product_code=product,
                      sterilisation_cycle_id=sterilisation_cycle)
    typer.echo(f"received {got.material} lot {got.lot} ({got.quantity:g} {got.unit}, expiry {got.expiry}): "
               "quarantine")


def _decide(lot: str, approve: bool, user: str, reason: str, password_stdin: bool, db: str | None) -> None:
    """Approve or reject a lot (QA signature)."""
    from fillfinish.masterdata.materials import decide

    with _store(db) as store:
        got = decide(store, lot, approve, user, read_password(user, password_stdin), reason)
    typer.echo(f"lot {got.lot} ({got.material}) {got.status} by {got.decided_by}")


@material_app.command("approve")
def material_approve(lot: Annotated[str, typer.Argument(help="lot id")], user: User,
                     reason: Annotated[str, typer.Option(help="note")] = "", password_stdin: PasswordStdin = False,
                     db: Db = None) -> None:
    """QA releases a quarantined lot for use."""
    _decide(lot, True, user, reason, password_stdin, db)


@material_app.command("reject")
def material_reject(lot: Annotated[str, typer.Argument(help="lot id")], user: User,
                    reason: Annotated[str, typer.Option(help="why")], password_stdin: PasswordStdin = False,
                    db: Db = None) -> None:
    """QA rejects a lot: it can never be used."""
    _decide(lot, False, user, reason, password_stdin, db)


@material_app.command("list")
def material_list(material: Annotated[Optional[str], typer.Option(help="only this material")] = None,
                  db: Db = None) -> None:
    """Every lot with status, remaining quantity and expiry."""
    from fillfinish.masterdata.materials import lots

    with _store(db, create=False) as store:
        found = [x for x in lots(store).values() if material is None or x.material == material]
    if not found:
        typer.echo("no material lot in the record")
    for x in found:
        typer.echo(f"{x.lot:<16} {x.material:<8} {x.status:<10} {x.remaining:g}/{x.quantity:g} {x.unit:<4} expiry "
                   f"{x.expiry}  supplier {x.supplier} lot {x.supplier_lot}  cert {x.certificate}")


# ------------------------------------------------------------------------------------------------------- cleaning
@cleaning_app.command("record")
def cleaning_record(procedure: Annotated[str, typer.Option(help="cleaning procedure (SOP id)")],
                    agent_lot: Annotated[str, typer.Option(help="lot of the cleaning/disinfecting agent")],
                    user: Annotated[str, typer.Option("--user", help="who cleaned (signs)")], line: Line = "line-1",
                    at: Annotated[Optional[str], typer.Option(help="when, ISO-8601 (default now)")] = None,
                    password_stdin: PasswordStdin = False, db: Db = None) -> None:
    """Record a cleaning of the line, signed by the person who did it."""
    from fillfinish.masterdata.cleaning import record_cleaning
    from fillfinish.masterdata.signing import parse_moment

    try:
        when = parse_moment(at) if at else dt.datetime.now(dt.UTC)
    except ValueError:
        _fail(f"--at '{at}' is not an ISO-8601 date-time")
    with _store(db) as store:
        c = record_cleaning(store, line, procedure, agent_lot, user, read_password(user, password_stdin), when)
    typer.echo(f"recorded: {c.line()}")


@cleaning_app.command("list")
def cleaning_list(line: Annotated[Optional[str], typer.Option(help="only this line")] = None, db: Db = None) -> None:
    """Cleaning entries."""
    from fillfinish.masterdata.cleaning import cleanings

    with _store(db, create=False) as store:
        found = cleanings(store, line)
    if not found:
        typer.echo("no cleaning recorded")
    for c in found:
        typer.echo(c.line())


@clearance_app.command("confirm")
def clearance_confirm(user: Annotated[str, typer.Option("--user", help="the second person who confirms (signs)")],
                      line: Line = "line-1",
                      operator: Annotated[Optional[str], typer.Option(help="the next batch's operator (refused if "
                                                                           "it is the confirming person)")] = None,
                      reason: Annotated[str, typer.Option(help="note")] = "",
                      password_stdin: PasswordStdin = False, db: Db = None) -> None:
    """Confirm the line clearance before the next batch (a second person, not that batch's operator)."""
    from fillfinish.masterdata.cleaning import confirm_clearance

    if operator is not None and operator == user:
        _fail(f"line clearance must be confirmed by a second person, not the operator {operator}")
    with _store(db) as store:
        c = confirm_clearance(store, line, user, read_password(user, password_stdin), reason)
    typer.echo(f"line {c.line_id} cleared by {c.by} (entry {c.seq}); valid for the next batch")


def mount(app: typer.Typer) -> None:
    """Add the master-data commands to the main CLI: recipe sub-commands on the existing `recipe` group and the
    `training`, `material`, `cleaning` and `clearance` groups."""
    from fillfinish.recipes.cli import app as recipe_app

    recipe_app.command("import")(recipe_import)
    recipe_app.command("approve")(recipe_approve)
    recipe_app.command("retire")(recipe_retire)
    recipe_app.command("list")(recipe_list)
    recipe_app.command("show")(recipe_show)
    app.add_typer(training_app, name="training")
    app.add_typer(material_app, name="material")
    app.add_typer(cleaning_app, name="cleaning")
    app.add_typer(clearance_app, name="clearance")
