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

from fillfinish.people.cli import deviation_app, qa_app, user_app
from fillfinish.recipes.cli import app as recipe_app
from fillfinish.record.cli import app as record_app

app = typer.Typer(help="fillfinish: controller, batch record and simulator of an aseptic fill-finish machine.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(recipe_app, name="recipe")
app.add_typer(record_app, name="record")
app.add_typer(user_app, name="user")
app.add_typer(deviation_app, name="deviation")
app.add_typer(qa_app, name="qa")
batch_app = typer.Typer(help="Batches that did not end: recover after a crash, resume, abort.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")

out = Console()
err = Console(stderr=True)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs on stderr")] = False) -> None:
    """fillfinish: controller, batch record and simulator of an aseptic fill-finish machine."""
    _configure_logging(verbose)
REPO_RECIPES = Path(__file__).resolve().parent.parent / "recipes"


class UserError(Exception):
    """Something the person asked for cannot be done; the message says what and why."""


from fillfinish.lock import RecordBusy, exclusive  # noqa: E402 - small, no heavy imports


def _configure_logging(verbose: bool) -> None:
    import logging

    level = logging.DEBUG if verbose else logging.WARNING
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level),
                        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
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


def _load_recipe(path: Path) -> Any:
    from fillfinish.recipes.loader import RecipeError, load_recipe

    try:
        loaded = load_recipe(path)
    except RecipeError as exc:
        raise UserError("\n".join(exc.problems)) from exc
    if loaded.recipe.recipe.status != "approved":
        raise UserError(f"{path}: recipe.status: '{loaded.recipe.recipe.status}' may not run a batch; allowed: approved")
    return loaded


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


def _run(coro: Any) -> Any:
    """Run a coroutine; turn user-facing errors into messages and exit codes."""
    from fillfinish.batch.recorder import RecordFailure
    from fillfinish.batch.recovery import NothingToRecover
    from fillfinish.machine.packml import CommandRefused, MachineError
    from fillfinish.record.store import RecordError
    from hal.balance.errors import BalanceError
    from hal.dispenser.errors import PumpError
    from hal.plc.errors import PlcError
    from hal.transport.errors import LinkError

    try:
        return asyncio.run(coro)
    except (UserError, RecordBusy) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except CommandRefused as exc:
        err.print(f"[red]refused:[/] {exc}")
        raise typer.Exit(1) from None
    except (RecordError, RecordFailure) as exc:
        err.print(f"[red]record:[/] {exc}")
        raise typer.Exit(1) from None
    except (PlcError, PumpError, BalanceError, LinkError, OSError, ConnectionError) as exc:
        err.print(f"[red]device:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    except (MachineError, NothingToRecover, ValueError) as exc:
        err.print(f"[red]refused:[/] {exc}")
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


def _authorise(db_url: str, person: str, roles: tuple[str, ...], what: str, password: str | None) -> bool:
    """Authority check (21 CFR 11.10(g)) once the record has user accounts: `person` must be an active user with one
    of `roles` and give their password (prompted when not given). Without accounts names are recorded as given.
    Returns True when the person was authenticated."""
    from fillfinish.people import PeopleError, UserStore
    from fillfinish.record.store import RecordStore

    with RecordStore(db_url) as store:
        users = UserStore(store)
        if not users.users():
            return False
        if password is None:
            if not sys.stdin.isatty():
                raise UserError(f"{what}: the record has user accounts; give --password for {person} (no terminal "
                                "to ask on)")
            password = typer.prompt(f"Password for {person}", hide_input=True)
        try:
            account = users.authenticate(person, password, purpose=what)
        except PeopleError as exc:
            raise UserError(f"{what}: {exc}") from exc
        if account.role not in roles:
            raise UserError(f"{what}: {person} has role {account.role}; allowed: {', '.join(roles)}")
    return True


def _tip_lot(lot: str | None, cycle: str | None, expiry: str | None) -> Any:
    from fillfinish.batch.controller import TipLot

    if lot is None:
        return None
    if not cycle or not expiry:
        raise UserError("--tip-lot needs --tip-cycle (its sterilisation cycle id) and --tip-expiry (YYYY-MM-DD)")
    try:
        dt.date.fromisoformat(expiry)
    except ValueError:
        raise UserError(f"--tip-expiry: '{expiry}' is not a date; allowed: YYYY-MM-DD") from None
    return TipLot(lot, cycle, expiry)


async def _run_batch(config: Any, recipe: Any, *, lot: str, vials: int, operator: str, db_url: str,
                     tip_lot: Any, serve: int | None, show_progress: bool, wire_log: Path | None = None,
                     authenticated: bool = False) -> Any:
    from fillfinish.batch.recovery import unfinished_batches
    from fillfinish.progress import BatchProgress
    from fillfinish.record.store import RecordStore
    from fillfinish.session import controller_session

    with exclusive(db_url, "fillfinish run"):
        store = RecordStore(db_url)
        try:
            pending = unfinished_batches(store)
        finally:
            store.close()
        if pending:
            raise UserError(f"batch {pending[0]} did not end (unclean shutdown?): run `fillfinish batch recover "
                            f"--config ...` then resume or abort it before starting a new batch")
        with BatchProgress(enabled=show_progress) as progress:
            async with controller_session(config, recipe, database_url=db_url, progress=progress.update,
                                          serve_port=serve, wire_log_path=wire_log) as controller:
                endpoint = getattr(controller, "endpoint", None)
                if endpoint:
                    err.print(f"controller OPC UA endpoint: {endpoint}  (fillfinish hmi --endpoint {endpoint})")
                return await controller.run_new(lot=lot, vials=vials, operator=operator, tip_lot=tip_lot,
                                                authenticated=authenticated)


@app.command()
def demo(
    vials: Annotated[int, typer.Option(min=1, help="vials to fill")] = 24,
    speed: Annotated[str, typer.Option(help="simulated seconds per real second, or 'max': as fast as the work "
                                            "allows (docs/simulator.md)")] = "200",
    recipe: Annotated[Path, typer.Option(help="recipe TOML")] = REPO_RECIPES / "fgf2.toml",
    db: Annotated[Optional[str], typer.Option(help="record database URL (default $FILLFINISH_DB or "
                                                   "sqlite:///fillfinish.db)")] = None,
    faults: Annotated[Optional[Path], typer.Option(help="TOML fault script for the simulator")] = None,
    operator: Annotated[str, typer.Option(help="operator name")] = "demo.operator",
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
                tip = None
                if loaded.recipe.tips.require_presterilised_lot:
                    expiry = (dt.date.today() + dt.timedelta(days=365)).isoformat()
                    tip = _tip_lot("TL-DEMO-0001", "EO-CYCLE-2026-118", expiry)
                lot = f"DEMO-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}"
                return await _run_batch(config, loaded, lot=lot, vials=vials, operator=operator, db_url=db_url,
                                        tip_lot=tip, serve=0, show_progress=True)
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
    tip_lot: Annotated[Optional[str], typer.Option(help="pre-sterilised tip lot")] = None,
    tip_cycle: Annotated[Optional[str], typer.Option(help="its sterilisation cycle id")] = None,
    tip_expiry: Annotated[Optional[str], typer.Option(help="its expiry date YYYY-MM-DD")] = None,
    serve: Annotated[int, typer.Option(help="port of the controller's OPC UA server (0: any free port)")] = 0,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    wire_log: Annotated[Optional[Path], typer.Option(help="append every device exchange to this JSONL file")] = None,
    password: Annotated[Optional[str], typer.Option(help="the operator's password (asked when the record has user "
                                                         "accounts and this is not given)")] = None,
    verbose: bool = False,
) -> None:
    """Run one batch against a site config."""
    if verbose:
        _configure_logging(True)

    async def main() -> Any:
        cfg = _load_config(config)
        loaded = _load_recipe(recipe)
        db_url = _db_url(db, cfg.database.url)
        signed = _authorise(db_url, operator, ("operator", "supervisor"), "start a batch", password)
        outcome = await _run_batch(cfg, loaded, lot=lot, vials=vials, operator=operator, db_url=db_url,
                                   tip_lot=_tip_lot(tip_lot, tip_cycle, tip_expiry), serve=serve,
                                   show_progress=progress, wire_log=wire_log, authenticated=signed)
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


    try:
        simulator = Simulator(speed, faults_file=faults, plc_port=plc_port).start()
    except (ValueError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    simulator.write_site_config(config_out, _db_url(db))
    out.print(f"pump (Cavro DT, 9600 8N1)  {simulator.pump_path}")
    out.print(f"balance (MT-SICS)          {simulator.balance_path}")
    out.print(f"PLC (OPC UA)               {simulator.plc.endpoint}")
    out.print(f"speed                      x{speed:g}")
    out.print(f"site config                {config_out}")
    out.print("Ctrl-C stops the simulator.")
    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # Ctrl-C, also when started in the background (SIGINT inherited ignored)
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
        with RecordStore(_db_url(db), create=False) as store:
            pending = unfinished_batches(store)
            for b in pending:
                h = BatchHistory.from_entries(store.entries(b))
                out.print(f"{b}: {h.state}, phase {h.phase}, vials judged {len(h.vials)}")
            if not pending:
                out.print("no unfinished batch")
    except RecordError as exc:
        err.print(f"[red]record:[/] {exc}")
        raise typer.Exit(1) from None


@batch_app.command("recover")
def batch_recover(
    config: Annotated[Path, typer.Option(help="site config TOML")],
    batch_id: Annotated[Optional[str], typer.Argument(help="batch (default: every unfinished one)")] = None,
    db: Annotated[Optional[str], typer.Option(help="record database URL (default: site config)")] = None,
) -> None:
    """After an unclean shutdown: make the line safe, record the gap and the uncertain vial, bring the batch Held."""

    async def make_safe(cfg: Any) -> dict[str, Any]:
        """Lamp off and pump terminated if the line can be reached; recovery itself needs only the record."""
        from fillfinish.line import Line

        safe: dict[str, Any] = {}
        line = None
        try:
            line = Line(cfg)
            await line.open()
            await line.plc.set_lamp(False)
            safe["lamp_off"] = True
            await line.call(line.pump.terminate)
            safe["pump_terminated"] = True
        except Exception as exc:  # noqa: BLE001 - recorded; the person decides
            safe["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            if line is not None:
                await line.close()
        return safe

    async def main() -> list[Any]:
        from fillfinish.batch.recovery import recover, unfinished_batches
        from fillfinish.clock import Clock
        from fillfinish.record.store import RecordStore

        cfg = _load_config(config)
        clock = Clock(cfg.clock.speed, cfg.clock.epoch)
        db_url = _db_url(db, cfg.database.url)
        with exclusive(db_url, "fillfinish batch recover"), RecordStore(db_url, now=clock.now, create=False) as store:
            targets = [batch_id] if batch_id else unfinished_batches(store)
            if not targets:
                raise UserError("no unfinished batch to recover")
            for b in targets:
                store.batch(b)  # an unknown batch is a clear error before anything is touched
            safe = await make_safe(cfg)
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
                      password: str | None = None) -> tuple[Any, str]:
    """Open a controller on the recipe snapshot of a Held batch (hash-checked) and resume or abort it."""
    from fillfinish.progress import BatchProgress
    from fillfinish.recipes.loader import RecipeError, loaded_from_text
    from fillfinish.record.store import RecordStore
    from fillfinish.session import controller_session
    from fillfinish.batch.controller import BatchOutcome
    from fillfinish.batch.recovery import abort_without_devices
    from fillfinish.clock import Clock
    from hal.plc.errors import PlcError
    from hal.transport.errors import LinkError

    cfg = _load_config(config)
    db_url = _db_url(db, cfg.database.url)
    _authorise(db_url, operator, ("supervisor",), f"{action} batch {batch_id}", password)
    with exclusive(db_url, f"fillfinish batch {action}"):
        store = RecordStore(db_url, create=False)
        try:
            header = store.batch(batch_id)
        finally:
            store.close()
        try:
            loaded = loaded_from_text(header.recipe_snapshot, f"record:{batch_id}", header.recipe_hash)
        except RecipeError as exc:
            raise UserError("\n".join(exc.problems)) from exc
        try:
            with BatchProgress(enabled=progress) as bar:
                async with controller_session(cfg, loaded, database_url=db_url, progress=bar.update,
                                              serve_port=serve) as controller:
                    endpoint = getattr(controller, "endpoint", None)
                    if endpoint:
                        err.print(f"controller OPC UA endpoint: {endpoint}  (fillfinish hmi --endpoint {endpoint})")
                    if action == "resume":
                        return await controller.resume(batch_id, operator, reason), db_url
                    return await controller.abort_held(batch_id, operator, reason), db_url
        except (PlcError, LinkError, OSError) as exc:
            if action != "abort":
                raise
            err.print(f"[yellow]devices unreachable ({exc}); aborting in the record only")
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
    password: Annotated[Optional[str], typer.Option(help="the supervisor's password (asked when needed)")] = None,
) -> None:
    """Resume a Held batch (a supervisor): Unhold re-checks every interlock and hold time first."""
    outcome, db_url = _run(_held_batch("resume", batch_id, config, db, operator, reason, serve, progress, password))
    _summary(outcome, db_url)
    raise typer.Exit(0 if outcome.state == "Complete" else 1)


@batch_app.command("abort")
def batch_abort(
    batch_id: Annotated[str, typer.Argument(help="the Held batch")],
    config: Annotated[Path, typer.Option(help="site config TOML")],
    operator: Annotated[str, typer.Option(help="the person who aborts")],
    reason: Annotated[str, typer.Option(help="why")],
    db: Annotated[Optional[str], typer.Option(help="record database URL (default: site config)")] = None,
    password: Annotated[Optional[str], typer.Option(help="the supervisor's password (asked when needed)")] = None,
) -> None:
    """Abort a Held batch (a supervisor): safe state, Aborted, disposition not suitable."""
    outcome, db_url = _run(_held_batch("abort", batch_id, config, db, operator, reason, password=password))
    _summary(outcome, db_url)


@app.command()
def command(
    name: Annotated[str, typer.Argument(help="Reset, Start, Stop, Hold, Unhold, Suspend, Unsuspend, Abort, Clear, "
                                             "Complete")],
    endpoint: Annotated[str, typer.Option(help="the controller's OPC UA endpoint")],
    operator: Annotated[str, typer.Option(help="who issues the command")],
    reason: Annotated[str, typer.Option(help="why")] = "",
) -> None:
    """Send a PackML command to a running controller (over its OPC UA server)."""
    from fillfinish.hmi.client import ClientError, CommandRejected, ControllerClient

    async def main() -> str:
        client = ControllerClient(endpoint)
        await client.connect()
        try:
            return await client.command(name, operator, reason)
        finally:
            await client.close()

    try:
        result = asyncio.run(main())
    except CommandRejected as exc:
        err.print(f"[red]refused:[/] {exc}")
        raise typer.Exit(1) from None
    except ClientError as exc:
        err.print(f"[red]cannot reach the controller at {endpoint}:[/] {exc}")
        raise typer.Exit(1) from None
    except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
        err.print(f"[red]cannot reach the controller at {endpoint}:[/] {exc}")
        raise typer.Exit(1) from None
    out.print(result)


@app.command()
def hmi(
    endpoint: Annotated[str, typer.Option(help="the controller's OPC UA endpoint")],
    operator: Annotated[str, typer.Option(help="who is at the console")],
) -> None:
    """The operator console (Textual) for a running controller."""
    from fillfinish.hmi.app import run_console

    run_console(endpoint, operator)


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
