"""`fillfinish ...`: the command line. Bad input gets a clear message and exit 1 (2 for usage), never a traceback."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any, Optional

import structlog
import typer
from rich.console import Console
from rich.markup import escape as _escape

from fillfinish.masterdata.cli import mount as _mount_master_data
from fillfinish.people.cli import user_app
from fillfinish.quality.cli import deviation_app, mediafill_app, qa_app, register_record_commands, viable_app
from fillfinish.password_input import PasswordStdinOption
from fillfinish.line_status import app as line_app
from fillfinish.recipes.cli import app as recipe_app
from fillfinish.record.cli import app as record_app
from fillfinish.record.site_cli import app as site_app

app = typer.Typer(help="fillfinish: controller, batch record and simulator of an aseptic fill-finish machine.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(recipe_app, name="recipe")
app.add_typer(record_app, name="record")
app.add_typer(user_app, name="user")
app.add_typer(deviation_app, name="deviation")
app.add_typer(qa_app, name="qa")
app.add_typer(viable_app, name="viable")
app.add_typer(mediafill_app, name="mediafill")
register_record_commands(record_app)
app.add_typer(line_app, name="line")
batch_app = typer.Typer(help="Batches that did not end: recover after a crash, resume, abort.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")
app.add_typer(site_app, name="site")
_mount_master_data(app)  # recipe import|approve|retire|list|show, training, material, cleaning, clearance

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays one line however long (rule 5)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs on stderr")] = False) -> None:
    """fillfinish: controller, batch record and simulator of an aseptic fill-finish machine."""
    _configure_logging(verbose)


class UserError(Exception):
    """Something the person asked for cannot be done; the message says what and why."""


from fillfinish.lock import RecordBusy, exclusive  # noqa: E402 - small, no heavy imports


class _StderrLogger:
    """A structlog logger writing to whatever sys.stderr is at the time of the call (not the stream of the moment
    logging was configured, which a test runner or a redirect may have closed since)."""

    def msg(self, message: str) -> None:
        """Write one event line."""
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _StderrLoggerFactory:
    """structlog logger factory for _StderrLogger."""

    def __call__(self, *args: Any) -> _StderrLogger:
        """One logger per bound logger (they share nothing)."""
        return _StderrLogger()


def _configure_logging(verbose: bool) -> None:
    import logging

    level = logging.DEBUG if verbose else logging.WARNING
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level),
                        logger_factory=_StderrLoggerFactory())
    # asyncua's own notices (revised session timeouts, no security on the simulator) are not the operator's business
    logging.basicConfig(level=logging.ERROR if not verbose else logging.INFO, stream=sys.stderr)
    logging.getLogger("asyncua").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def _db_url(value: str | None, site_default: str | None = None) -> str:
    """--db, else $FILLFINISH_DB, else the site config's [database] url (run, batch), else sqlite:///fillfinish.db;
    a bare file path means an SQLite file (the same rule as `fillfinish record`)."""
    from fillfinish.record.cli import resolve_db_url

    if value is None and not os.environ.get("FILLFINISH_DB") and site_default:
        return site_default
    return resolve_db_url(value)


def _load_recipe(value: Path | str) -> Any:
    from fillfinish.recipes.loader import RecipeError, load_recipe
    from fillfinish.recipes.shipped import resolve_recipe, shipped_names

    path = resolve_recipe(value)
    if not path.is_file():
        names = ", ".join(shipped_names()) or "none found"
        raise UserError(f"{value}: recipe: file not found; allowed: the path of a recipe TOML file or a shipped "
                        f"recipe name ({names})")
    try:
        loaded = load_recipe(path)
    except RecipeError as exc:
        raise UserError("\n".join(exc.problems)) from exc
    return loaded  # whether it may run is the record's signed approval (masterdata/start_checks.py), not its text


def _load_config(path: Path) -> Any:
    from fillfinish.config import ConfigError, load_site_config
    from hal.plc.signals import validate_nodes

    try:
        config = load_site_config(path)
        validate_nodes(dict(config.plc.nodes))
    except ConfigError as exc:
        raise UserError("\n".join(exc.problems)) from exc
    except ValueError as exc:
        raise UserError(f"{path}: plc.nodes: {exc}") from exc
    return config


def _check_fit(loaded: Any, config: Any, source: str) -> None:
    """UserError listing every way the recipe does not fit the configured pump and syringe (before any device)."""
    from fillfinish.line_fit import recipe_fit_problems

    problems = recipe_fit_problems(loaded.recipe, config, source)
    if problems:
        raise UserError("\n".join(problems))


def _run(coro: Any) -> Any:
    """Run a coroutine; turn user-facing errors into messages and exit codes."""
    from fillfinish.batch.recorder import RecordFailure
    from fillfinish.batch.recovery import NothingToRecover
    from fillfinish.machine.packml import CommandRefused, MachineError
    from fillfinish.record.store import RecordError
    from hal.balance.errors import BalanceError
    from hal.dispenser.errors import PumpError
    from hal.plc.errors import PlcError
    from hal.plc.guard import LineClaimed
    from hal.transport.errors import LinkError
    from rich.markup import escape

    from fillfinish.shutdown import ShutdownBySignal

    try:
        return asyncio.run(coro)
    except (UserError, RecordBusy) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except ShutdownBySignal as exc:
        err.print(f"[yellow]stopped:[/] {escape(str(exc))}")
        raise typer.Exit(exc.exit_code) from None
    except LineClaimed as exc:
        err.print(f"[red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except CommandRefused as exc:
        err.print(f"[red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except (RecordError, RecordFailure) as exc:
        err.print(f"[red]record:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except (PlcError, PumpError, BalanceError, LinkError, OSError, ConnectionError) as exc:
        err.print(f"[red]device:[/] {type(exc).__name__}: {escape(str(exc))}")
        raise typer.Exit(1) from None
    except (MachineError, NothingToRecover, ValueError) as exc:
        err.print(f"[red]refused:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted")
        raise typer.Exit(1) from None


def _summary(outcome: Any, db_url: str, endpoint: str | None = None) -> None:
    from rich.table import Table

    t = Table(title=f"Batch {outcome.batch_id}", show_header=False)
    t.add_row("final state", outcome.state)
    t.add_row("vials filled (accepted)", str(outcome.accepted))
    t.add_row("vials rejected", str(outcome.rejected))
    t.add_row("vials uncertain", str(outcome.uncertain))
    t.add_row("UV dose delivered", f"{outcome.uv_dose_mj_cm2:.1f} mJ/cm2 (reference point)")
    if outcome.tip_dose_mj_cm2:
        t.add_row("tip station dose", f"{outcome.tip_dose_mj_cm2:.1f} mJ/cm2")
    t.add_row("excursions / interlocks", "\n".join(outcome.excursions) or "none")
    if outcome.disposition is not None:
        colour = "green" if outcome.disposition.suitable else "red"
        t.add_row("disposition", f"[bold {colour}]{outcome.disposition.verdict}")
        for r in outcome.disposition.reasons:
            t.add_row("", f"- {r['reason']}" + (f" (entries {', '.join(map(str, r['entries'][:8]))})"
                                                  if r["entries"] else ""))
    if outcome.message:
        t.add_row("note", outcome.message)
    t.add_row("record", f"{db_url}  (fillfinish record show {outcome.batch_id})")
    out.print(t)


def _authorise(db_url: str, person: str, roles: tuple[str, ...], what: str, password_stdin: bool) -> bool:
    """Authority check (21 CFR 11.10(g)) once the record has user accounts: `person` must be an active user with one
    of `roles` and give their password (asked on the terminal, or one line of stdin with --password-stdin). Without
    accounts names are recorded as given. Returns True when the person was authenticated."""
    from fillfinish.password_input import PasswordInputError, read_password
    from fillfinish.people import PeopleError, UserStore
    from fillfinish.record.store import RecordStore

    with RecordStore(db_url) as store:
        users = UserStore(store)
        if not users.users():
            return False
        try:
            password = read_password(f"Password for {person}", from_stdin=password_stdin)
        except PasswordInputError as exc:
            raise UserError(f"{what}: the record has user accounts: {exc}") from None
        try:
            account = users.authenticate(person, password, purpose=what)
        except PeopleError as exc:
            raise UserError(f"{what}: {exc}") from exc
        if account.role not in roles:
            raise UserError(f"{what}: {person} has role {account.role}; allowed: {', '.join(roles)}")
    return True


def _site_accounts(db_url: str) -> list[str]:
    """User ids in the record other than the demo's own (demo.*): a non-empty list means a site's record."""
    from fillfinish.people import UserStore
    from fillfinish.record.store import RecordOpenError, RecordStore

    try:
        with RecordStore(db_url) as store:
            return [u.username for u in UserStore(store).users() if not u.username.startswith("demo.")]
    except RecordOpenError as exc:
        raise UserError(str(exc)) from None


def _materials(items: list[str] | None, file: Path | None) -> dict[str, str]:
    """The material lots of `run --material KIND=LOT ... --materials FILE`."""
    from fillfinish.masterdata import MasterDataError
    from fillfinish.masterdata.cli import parse_materials

    try:
        return parse_materials(items, file)
    except MasterDataError as exc:
        raise UserError(str(exc)) from None


def _tip_lot(lot: str | None, cycle: str | None, expiry: str | None) -> Any:
    from fillfinish.batch.controller import TipLot

    if lot is None:
        return None
    try:  # the lot is the `tips` material lot; cycle and expiry come from its receipt and must match when given
        dt.date.fromisoformat(expiry) if expiry else None
    except ValueError:
        raise UserError(f"--tip-expiry: '{expiry}' is not a date; allowed: YYYY-MM-DD") from None
    return TipLot(lot, cycle or "", expiry or "")


async def _run_batch(config: Any, recipe: Any, *, lot: str, vials: int, operator: str, db_url: str,
                     tip_lot: Any, serve: int | None, show_progress: bool, wire_log: Path | None = None,
                     authenticated: bool = False, materials: dict[str, str] | None = None) -> Any:
    from fillfinish.batch.controller import TipLot
    from fillfinish.batch.recovery import unfinished_batches
    from fillfinish.masterdata.start_checks import finish_batch, use_clearance_for
    from fillfinish.progress import BatchProgress
    from fillfinish.record.store import RecordStore
    from fillfinish.session import controller_session

    from fillfinish.shutdown import SignalShutdown

    shutdown = SignalShutdown()
    with shutdown.installed(), exclusive(db_url, "fillfinish run", config.line.id):
        store = RecordStore(db_url)
        try:
            pending = unfinished_batches(store, config.line.id)
        finally:
            store.close()
        if pending:
            raise UserError(f"batch {pending[0]} did not end (unclean shutdown?): run `fillfinish batch recover "
                            f"--config ...` then resume or abort it before starting a new batch")
        start = _master_data_start(config, recipe, db_url, operator=operator, vials=vials, lot=lot,
                                   materials=materials or {}, tip_lot=tip_lot)
        tip_lot = TipLot(*start.tip_lot) if start.tip_lot else None
        batch_id = None
        try:
            with BatchProgress(enabled=show_progress) as progress:
                async with controller_session(config, recipe, database_url=db_url, progress=progress.update,
                                              serve_port=serve, wire_log_path=wire_log) as controller:
                    shutdown.controller = controller
                    endpoint = getattr(controller, "endpoint", None)
                    if endpoint:
                        err.print(f"controller OPC UA endpoint: {endpoint}  (fillfinish hmi --endpoint {endpoint}; "
                                  "log in as a user of the record)")
                    use_clearance_for(db_url, config, start, lot, operator)
                    try:
                        outcome = await controller.run_new(lot=lot, vials=vials, operator=operator, tip_lot=tip_lot,
                                                           authenticated=authenticated, master_data=start.record)
                    finally:
                        batch_id = controller.batch_id
        except asyncio.CancelledError:
            if shutdown.signum is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise _stopped_by_signal(config, db_url, batch_id, shutdown.signum) from None
        if outcome.state in ("Complete", "Aborted", "Stopped"):
            finish_batch(db_url, outcome.batch_id, start, config)
        return outcome


def _master_data_start(config: Any, recipe: Any, db_url: str, **request: Any) -> Any:
    """The checks before start (fillfinish/masterdata/start_checks.py); a refusal names everything missing."""
    from fillfinish.masterdata import MasterDataError
    from fillfinish.masterdata.start_checks import start_batch

    try:
        return start_batch(db_url, config, recipe, **request)
    except MasterDataError as exc:
        raise UserError(f"may not start: {exc}") from None


def _demo_master_data(config: Any, recipe: Path, db_url: str, operator: str, vials: int) -> Any:
    """The demo's own master data (demo accounts, approved recipe, trained operator, approved lots, cleaning,
    clearance by a second person) on the simulator's clock, so `fillfinish demo` needs no set-up."""
    from fillfinish.clock import Clock
    from fillfinish.masterdata import MasterDataError
    from fillfinish.masterdata.demo import prepare
    from fillfinish.people import PeopleError, UserStore
    from fillfinish.record.store import RecordStore

    clock = Clock(config.clock.speed, config.clock.epoch)
    try:
        with RecordStore(db_url, now=clock.now) as store:
            prepared = prepare(store, [recipe], operator, clock.now(), line_id=config.master_data.line_id,
                               planned_vials=max(vials, 1000))
            UserStore(store).authenticate(operator, prepared.passwords[operator], purpose="start a batch (demo)")
            return prepared
    except (MasterDataError, PeopleError) as exc:
        raise UserError(f"demo master data: {exc}") from None


def _stopped_by_signal(config: Any, db_url: str, batch_id: str | None, signum: int) -> Exception:
    """After SIGTERM/SIGINT: bring the batch to its resting state in the record (Held, or Stopped with a disposition
    before Execute), the signal recorded as the cause; the exception carries the exit code."""
    import signal as _signal

    from fillfinish.batch.recovery import NothingToRecover, recover
    from fillfinish.clock import Clock
    from fillfinish.record.store import RecordStore
    from fillfinish.shutdown import ShutdownBySignal

    name = _signal.Signals(signum).name
    if batch_id is None:
        return ShutdownBySignal(signum, f"{name}: stopped before a batch was created; nothing sent to fill")
    clock = Clock(config.clock.speed, config.clock.epoch)
    with RecordStore(db_url, now=clock.now, create=False) as store:
        try:
            report = recover(store, batch_id, clock.now(), cause=f"{name} received: controller stopped")
        except NothingToRecover:
            return ShutdownBySignal(signum, f"{name}: batch {batch_id} had already ended")
        store.append(batch_id, "safe_state", {"action": "recovery", "cause": name}, "system")
    return ShutdownBySignal(signum, f"{name}: line in its safe state; batch {batch_id} is {report.state_after}"
                            + (" (resume or abort it: fillfinish batch resume/abort)" if report.state_after == "Held"
                               else ""))


@app.command()
def demo(
    vials: Annotated[int, typer.Option(min=1, help="vials to fill")] = 24,
    speed: Annotated[str, typer.Option(help="simulated seconds per real second, or 'max': as fast as the work "
                                            "allows (docs/simulator.md)")] = "200",
    recipe: Annotated[str, typer.Option(help="recipe TOML file, or the name of a shipped recipe "
                                             "(fgf2, il2, tgf-beta1, media-fill)")] = "fgf2",
    db: Annotated[Optional[str], typer.Option(help="record database URL (default $FILLFINISH_DB or "
                                                   "sqlite:///fillfinish.db)")] = None,
    faults: Annotated[Optional[Path], typer.Option(help="TOML fault script for the simulator")] = None,
    operator: Annotated[str, typer.Option(help="operator user id (demo.* on a demo record; a real account, with "
                                               "its password, on a record that has accounts)")] = "demo.operator",
    verbose: bool = False,
) -> None:
    """Run a whole batch on the simulator (UV cycle, tip step, fill with check-weighing) on the embedded database."""
    if verbose:
        _configure_logging(True)
    db_url = _db_url(db)

    async def main() -> Any:
        from sim.runner import Simulator
        from sim.world import WorldSettings

        loaded = _load_recipe(recipe)
        settings = WorldSettings(density_g_ml=loaded.recipe.fill.density_g_ml)
        tmp_dir = tempfile.TemporaryDirectory(prefix="fillfinish-demo-")
        rate, timeline = _demo_speed(speed, Path(tmp_dir.name))
        try:
            sim = Simulator(rate, settings=settings, faults_file=faults, timeline=timeline)
            sim.start()
        except ValueError as exc:
            tmp_dir.cleanup()
            raise UserError(str(exc)) from exc
        try:
            with tmp_dir as tmp:
                cfg_path = sim.write_site_config(Path(tmp) / "site.toml", db_url)
                config = _load_config(cfg_path)
                err.print(f"simulator: pump {sim.pump_path}, balance {sim.balance_path}, PLC {sim.plc.endpoint}, "
                          f"speed {'max (shared timeline)' if timeline else f'x{rate:g}'}")
                if _site_accounts(db_url):  # a site's record: log in like `run`, change no account (issue 6.6)
                    signed = _authorise(db_url, operator, ("operator", "supervisor"), "start a demo batch", False)
                    materials: dict[str, str] = {}  # the site's own approved lots and master data apply, as for run
                else:  # a demo record: the demo's own accounts (demo.*) and signed master data (issue 8.6)
                    if not operator.startswith("demo."):
                        raise UserError(f"--operator {operator}: the demo creates its own accounts, named demo.*; "
                                        "allowed: a demo.* name, or a record with user accounts and a login")
                    prepared = _demo_master_data(config, loaded.path, db_url, operator, vials)
                    materials, signed = prepared.materials, True
                lot = f"DEMO-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
                return await _run_batch(config, loaded, lot=lot, vials=vials, operator=operator, db_url=db_url,
                                        tip_lot=None, serve=0, show_progress=True, materials=materials,
                                        authenticated=signed)
        finally:
            await asyncio.to_thread(sim.stop)

    outcome = _run(main())
    _summary(outcome, db_url)
    raise typer.Exit(0 if outcome.state == "Complete" else 1)


def _demo_speed(text: str, folder: Path) -> tuple[float, Path | None]:
    """--speed: a number > 0 (a fixed speed) or 'max' (a shared timeline in `folder` that moves only with the
    machine's waits, at most MAX_SPEED_RATE simulated s per real s); UsageError naming what is allowed."""
    if text.strip().lower() == "max":
        return MAX_SPEED_RATE, folder / "timeline"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0.001 or value == float("inf"):
        raise typer.BadParameter(f"{text!r}; allowed: a number >= 0.001 or 'max'", param_hint="--speed")
    return value, None


MAX_SPEED_RATE = 2000.0  # simulated s per real s at most on the 'max' timeline (OPC UA publishing keeps up; 0013)


@app.command()
def run(
    config: Annotated[Path, typer.Option(help="site config TOML (the simulator's or a real machine's)")],
    recipe: Annotated[Path, typer.Option(help="approved recipe TOML")],
    lot: Annotated[str, typer.Option(help="product lot number")],
    vials: Annotated[int, typer.Option(min=1, help="vials to fill")],
    operator: Annotated[str, typer.Option(help="operator name (performs the batch)")],
    db: Annotated[Optional[str], typer.Option(help="record database URL (default: site config)")] = None,
    tip_lot: Annotated[Optional[str], typer.Option(help="pre-sterilised tip lot (the `tips` material lot)")] = None,
    tip_cycle: Annotated[Optional[str], typer.Option(help="its sterilisation cycle id (checked against the lot)")] = (
        None),
    tip_expiry: Annotated[Optional[str], typer.Option(help="its expiry YYYY-MM-DD (checked against the lot)")] = None,
    material: Annotated[Optional[list[str]], typer.Option(help="a material lot KIND=LOT (bulk, media, vial, stopper, "
                                                               "cap, tips); repeat for each")] = None,
    materials: Annotated[Optional[Path], typer.Option(help="TOML file of KIND = \"LOT\" lines")] = None,
    serve: Annotated[int, typer.Option(help="port of the controller's OPC UA server (0: any free port)")] = 0,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    wire_log: Annotated[Optional[Path], typer.Option(help="append every device exchange to this JSONL file")] = None,
    password_stdin: PasswordStdinOption = False,
    verbose: bool = False,
) -> None:
    """Run one batch against a site config."""
    if verbose:
        _configure_logging(True)

    async def main() -> Any:
        cfg = _load_config(config)
        loaded = _load_recipe(recipe)
        _check_fit(loaded, cfg, str(recipe))
        db_url = _db_url(db, cfg.database.url)
        signed = _authorise(db_url, operator, ("operator", "supervisor"), "start a batch", password_stdin)
        outcome = await _run_batch(cfg, loaded, lot=lot, vials=vials, operator=operator, db_url=db_url,
                                   tip_lot=_tip_lot(tip_lot, tip_cycle, tip_expiry), serve=serve,
                                   show_progress=progress, wire_log=wire_log, authenticated=signed,
                                   materials=_materials(material, materials))
        return outcome, db_url

    outcome, db_url = _run(main())
    _summary(outcome, db_url)
    raise typer.Exit(0 if outcome.state == "Complete" else 1)


@app.command()
def sim(
    speed: Annotated[float, typer.Option(min=0.001, help="simulated seconds per real second")] = 1.0,
    config_out: Annotated[Path, typer.Option(help="where to write the site config pointing at the simulator")] = Path(
        "sim-site.toml"),
    faults: Annotated[Optional[Path], typer.Option(help="TOML fault script")] = None,
    db: Annotated[Optional[str], typer.Option(help="database URL to put in the site config")] = None,
    plc_port: Annotated[int, typer.Option(help="OPC UA port (0: any free port)")] = 0,
) -> None:
    """Run the whole simulator standalone until Ctrl-C; print its endpoints and write the site config."""
    import time

    from sim.runner import Simulator


    from rich.markup import escape

    target = Path(config_out)
    if target.is_dir() or not (target.parent if str(target.parent) else Path(".")).is_dir():
        why = "it is a folder" if target.is_dir() else f"folder {target.parent} does not exist"
        err.print(f"[red]error:[/] --config-out {escape(str(target))}: {escape(why)}; allowed: a file path in an "
                  "existing folder")
        raise typer.Exit(1)
    try:
        simulator = Simulator(speed, faults_file=faults, plc_port=plc_port).start()
    except (ValueError, OSError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    try:
        simulator.write_site_config(config_out, _db_url(db))
    except OSError as exc:
        simulator.stop()
        err.print(f"[red]error:[/] --config-out {escape(str(target))}: {escape(exc.strerror or str(exc))}")
        raise typer.Exit(1) from None
    out.print(f"pump (Cavro DT, 9600 8N1)  {simulator.pump_path}")
    out.print(f"balance (MT-SICS)          {simulator.balance_path}")
    out.print(f"PLC (OPC UA)               {simulator.plc.endpoint}")
    out.print(f"speed                      x{speed:g}")
    out.print(f"site config                {config_out}")
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # Ctrl-C, also when started in the background (SIGINT inherited ignored)
    out.print("Ctrl-C stops the simulator.")  # only once it does (a caller may wait for this line)
    try:
        while not stop:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
        out.print("simulator stopped")


@batch_app.command("status")
def batch_status(db: Annotated[Optional[str], typer.Option(help="record database URL")] = None) -> None:
    """List batches that did not end."""
    from fillfinish.batch.history import BatchHistory
    from fillfinish.batch.recovery import unfinished_batches
    from fillfinish.record.store import RecordError, RecordStore

    try:
        with RecordStore(_db_url(db), create=False, read_only=True) as store:
            pending = unfinished_batches(store)
            for b in pending:
                h = BatchHistory.from_entries(store.entries(b))
                out.print(f"{b}: {h.state}, phase {h.phase}, vials judged {len(h.vials)}")
            if not pending:
                out.print("no unfinished batch")
    except RecordError as exc:
        err.print(f"[red]record:[/] {_escape(str(exc))}")
        raise typer.Exit(1) from None


@batch_app.command("recover")
def batch_recover(
    config: Annotated[Path, typer.Option(help="site config TOML")],
    batch_id: Annotated[Optional[str], typer.Argument(help="batch (default: every unfinished one)")] = None,
    db: Annotated[Optional[str], typer.Option(help="record database URL (default: site config)")] = None,
) -> None:
    """After an unclean shutdown: make the line safe, record the gap and the uncertain vial, bring the batch Held."""

    async def make_safe(cfg: Any, store: Any, batch: str) -> dict[str, Any]:
        """Claim the line (refused while a live controller holds it: nothing is sent then), lamp off, pump
        terminated, positioner stopped; a PLC alarm latched meanwhile is recorded in the batch. If the line cannot
        be reached at all, recovery goes on from the record alone and says so."""
        from fillfinish.line import Line
        from fillfinish.line_safety import record_plc_alarm
        from hal.plc.guard import LineClaimed

        safe: dict[str, Any] = {}
        line = None
        try:
            line = Line(cfg, what="fillfinish batch recover")
            await line.open()
            alarm = await record_plc_alarm(store, line, batch)
            if alarm is not None:
                safe["plc_alarm"] = alarm["message"]
            await line.plc.set_lamp(False)
            safe["lamp_off"] = True
            await line.call(line.pump.terminate)
            safe["pump_terminated"] = True
        except LineClaimed:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded; the person decides
            safe["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            if line is not None:
                await line.close()
        return safe

    async def main() -> list[Any]:
        from fillfinish.batch.recovery import check_recoverable, recover, unfinished_batches
        from fillfinish.clock import Clock
        from fillfinish.record.store import RecordStore

        cfg = _load_config(config)
        clock = Clock(cfg.clock.speed, cfg.clock.epoch)
        db_url = _db_url(db, cfg.database.url)
        with exclusive(db_url, "fillfinish batch recover", cfg.line.id), \
                RecordStore(db_url, now=clock.now, create=False) as store:
            targets = [batch_id] if batch_id else unfinished_batches(store, cfg.line.id)
            if not targets:
                raise UserError("no unfinished batch to recover")
            for b in targets:
                store.batch(b)  # an unknown batch is a clear error before anything is touched
                check_recoverable(store, b)  # an ended batch: nothing to recover, nothing sent to the line
            safe = await make_safe(cfg, store, targets[0])
            reports = []
            for b in targets:
                report = recover(store, b, clock.now())
                if not report.already:
                    store.append(b, "safe_state", {"action": "recovery", **safe}, "system")
                reports.append(report)
            return reports

    for report in _run(main()):
        for line in report.lines():
            out.print(line)


async def _held_batch(action: str, batch_id: str, config: Path, db: str | None, operator: str, reason: str,
                      serve: int | None = None, progress: bool = False,
                      password_stdin: bool = False) -> tuple[Any, str]:
    """Open a controller on the recipe snapshot of a Held batch (hash-checked) and resume or abort it."""
    from fillfinish.progress import BatchProgress
    from fillfinish.recipes.loader import RecipeError, loaded_from_text
    from fillfinish.record.store import RecordStore
    from fillfinish.session import controller_session
    from fillfinish.batch.controller import BatchOutcome
    from fillfinish.batch.recovery import abort_without_devices, not_held_reason
    from fillfinish.clock import Clock
    from hal.plc.errors import PlcError
    from hal.transport.errors import LinkError

    cfg = _load_config(config)
    db_url = _db_url(db, cfg.database.url)
    _authorise(db_url, operator, ("supervisor",), f"{action} batch {batch_id}", password_stdin)
    with exclusive(db_url, f"fillfinish batch {action}", cfg.line.id):
        store = RecordStore(db_url, create=False)
        try:
            header = store.batch(batch_id)
            problem = not_held_reason(store, batch_id, action)  # before anything is sent to the line
        finally:
            store.close()
        if problem:
            raise UserError(problem)
        try:
            loaded = loaded_from_text(header.recipe_snapshot, f"record:{batch_id}", header.recipe_hash)
        except RecipeError as exc:
            raise UserError("\n".join(exc.problems)) from exc
        if action == "resume":
            _check_fit(loaded, cfg, f"record:{batch_id}")
        try:
            with BatchProgress(enabled=progress) as bar:
                async with controller_session(cfg, loaded, database_url=db_url, progress=bar.update,
                                              serve_port=serve) as controller:
                    endpoint = getattr(controller, "endpoint", None)
                    if endpoint:
                        err.print(f"controller OPC UA endpoint: {endpoint}  (fillfinish hmi --endpoint {endpoint}; "
                                  "log in as a user of the record)")
                    if action == "resume":
                        return await controller.resume(batch_id, operator, reason), db_url
                    return await controller.abort_held(batch_id, operator, reason), db_url
        except (PlcError, LinkError, OSError) as exc:
            if action != "abort":
                raise
            err.print(f"[yellow]devices unreachable ({_escape(str(exc))}); aborting in the record only")
            clock = Clock(cfg.clock.speed, cfg.clock.epoch)
            store = RecordStore(db_url, now=clock.now, create=False)
            try:
                abort_without_devices(store, batch_id, operator, reason, str(exc))
            finally:
                store.close()
            return BatchOutcome(batch_id, "Aborted", None, message="aborted in the record only: the safe state of "
                                "the line is not confirmed; check it by hand"), db_url


@batch_app.command("resume")
def batch_resume(
    batch_id: Annotated[str, typer.Argument(help="the Held batch")],
    config: Annotated[Path, typer.Option(help="site config TOML")],
    operator: Annotated[str, typer.Option(help="the person who decides to resume")],
    reason: Annotated[str, typer.Option(help="why it is safe to resume")],
    db: Annotated[Optional[str], typer.Option(help="record database URL (default: site config)")] = None,
    serve: Annotated[int, typer.Option(help="controller OPC UA port (0: any)")] = 0,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Resume a Held batch (a supervisor): Unhold re-checks every interlock and hold time first."""
    outcome, db_url = _run(_held_batch("resume", batch_id, config, db, operator, reason, serve, progress,
                                       password_stdin))
    _summary(outcome, db_url)
    raise typer.Exit(0 if outcome.state == "Complete" else 1)


@batch_app.command("abort")
def batch_abort(
    batch_id: Annotated[str, typer.Argument(help="the Held batch")],
    config: Annotated[Path, typer.Option(help="site config TOML")],
    operator: Annotated[str, typer.Option(help="the person who aborts")],
    reason: Annotated[str, typer.Option(help="why")],
    db: Annotated[Optional[str], typer.Option(help="record database URL (default: site config)")] = None,
    password_stdin: PasswordStdinOption = False,
) -> None:
    """Abort a Held batch (a supervisor): safe state, Aborted, disposition not suitable."""
    outcome, db_url = _run(_held_batch("abort", batch_id, config, db, operator, reason,
                                       password_stdin=password_stdin))
    _summary(outcome, db_url)


@app.command()
def command(
    name: Annotated[str, typer.Argument(help="Reset, Start, Stop, Hold, Unhold, Suspend, Unsuspend, Abort, Clear, "
                                             "Complete")],
    endpoint: Annotated[str, typer.Option(help="the controller's OPC UA endpoint")],
    user: Annotated[str, typer.Option(help="your user id (the password is asked, or read with --password-stdin)")],
    reason: Annotated[str, typer.Option(help="why")] = "",
    password_stdin: PasswordStdinOption = False,
    server_certificate: Annotated[Optional[Path], typer.Option(help="the controller's certificate (DER) to pin; "
                                                                    "default: taken from its endpoint")] = None,
) -> None:
    """Send a PackML command to a running controller as an authenticated user (over its OPC UA server). Abort,
    Complete and Unhold after an alarm are signed with the same password (an electronic signature)."""
    from fillfinish.command_roles import SIGNATURE_MEANINGS
    from fillfinish.hmi.client import ClientError, CommandRejected, ControllerClient, LoginRefused
    from fillfinish.password_input import PasswordInputError, read_password

    try:
        password = read_password(f"Password for {user}", from_stdin=password_stdin)
    except PasswordInputError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None

    async def main() -> str:
        client = ControllerClient(endpoint, user=user, password=password, server_certificate=server_certificate)
        await client.connect()
        try:
            return await client.command(name, reason, password if _canonical(name) in SIGNATURE_MEANINGS else "")
        finally:
            await client.close()

    try:
        result = asyncio.run(main())
    except CommandRejected as exc:
        err.print(f"[red]refused:[/] {_escape(str(exc))}")
        raise typer.Exit(1) from None
    except LoginRefused as exc:
        err.print(f"[red]refused:[/] {exc}")
        raise typer.Exit(1) from None
    except ClientError as exc:
        err.print(f"[red]cannot reach the controller at {_escape(endpoint)}:[/] {_escape(str(exc))}")
        raise typer.Exit(1) from None
    except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
        err.print(f"[red]cannot reach the controller at {_escape(endpoint)}:[/] {_escape(str(exc))}")
        raise typer.Exit(1) from None
    out.print(result)


def _canonical(name: str) -> str:
    """The PackML command name for a name or number as typed ('' when it is none: the controller explains)."""
    from fillfinish.machine.packml import UnknownCommand, parse_command

    try:
        return parse_command(name.strip()).name
    except (UnknownCommand, ValueError):
        return ""


@app.command()
def hmi(
    endpoint: Annotated[str, typer.Option(help="the controller's OPC UA endpoint")],
    user: Annotated[str, typer.Option(help="user id to pre-fill on the login screen")] = "",
    config: Annotated[Optional[Path], typer.Option(help="site config: its [security] console_lock_after_s")] = None,
    lock_after: Annotated[Optional[float], typer.Option(min=10, help="lock after this many seconds without input "
                                                                     "(default: site config, else 300)")] = None,
    server_certificate: Annotated[Optional[Path], typer.Option(help="the controller's certificate (DER) to pin")] = None,
) -> None:
    """The operator console (Textual) for a running controller; it starts with the login (user id + password)."""
    from fillfinish.hmi.app import DEFAULT_LOCK_AFTER_S, run_console

    seconds = lock_after
    if seconds is None:
        seconds = _load_config(config).security.console_lock_after_s if config else DEFAULT_LOCK_AFTER_S
    run_console(endpoint, user=user, lock_after_s=seconds, server_certificate=server_certificate)


@app.command()
def diagram() -> None:
    """Print the PackML and phase-sequence state diagrams (Mermaid), generated from the machine's own tables."""
    from fillfinish.machine import diagram as d

    out.print(d.mermaid(), markup=False, highlight=False)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted")
        sys.exit(1)
