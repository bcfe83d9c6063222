"""`fillfinish run | demo | batch status|recover|resume|abort`: parse the options, call the batch service
(fillfinish/batch/service.py) or the demo (fillfinish/demo.py), print the outcome. Errors: fillfinish/cli_errors.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fillfinish.cli_common import configure_logging, db_url as resolve_db, notice, password_of, print_summary
from fillfinish.cli_errors import out, reported, run as run_async
from fillfinish.errors import UserError
from fillfinish.password_input import PasswordStdinOption

batch_app = typer.Typer(help="Batches that did not end: recover after a crash, resume, abort.", no_args_is_help=True)
MAX_SPEED_RATE = 2000.0  # simulated s per real s at most on the 'max' timeline (OPC UA publishing keeps up; 0013)


class _Progress:
    """Progress bars that appear with the first update (not over a password prompt or a refusal)."""

    def __init__(self, enabled: bool) -> None:
        from fillfinish.progress import BatchProgress

        self.bar = BatchProgress(enabled=enabled)
        self.started = False

    def update(self, what: str, done: float, total: float) -> None:
        """The controller's ProgressFn."""
        if not self.started:
            self.bar.__enter__()
            self.started = True
        self.bar.update(what, done, total)

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.bar.__exit__(*exc)


def _options(progress: _Progress, serve: int | None, wire_log: Path | None = None, signals: bool = False) -> Any:
    """The batch service's session options for a command."""
    from fillfinish.batch.service import SessionOptions

    return SessionOptions(progress=progress.update, serve_port=serve, wire_log=wire_log, notify=notice,
                          handle_signals=signals)


def _materials(items: list[str] | None, file: Path | None) -> dict[str, str]:
    """The material lots of `run --material KIND=LOT ... --materials FILE`."""
    from fillfinish.masterdata import MasterDataError
    from fillfinish.masterdata.cli import parse_materials

    try:
        return parse_materials(items, file)
    except MasterDataError as exc:
        raise UserError(str(exc)) from None


def _tip_lot(lot: str | None, cycle: str | None, expiry: str | None) -> Any:
    """The legacy --tip-lot/--tip-cycle/--tip-expiry options as a TipLot (None without --tip-lot)."""
    from fillfinish.batch.service import TipLot

    if lot is None:
        return None
    try:  # the lot is the `tips` material lot; cycle and expiry come from its receipt and must match when given
        dt.date.fromisoformat(expiry) if expiry else None
    except ValueError:
        raise UserError(f"--tip-expiry: '{expiry}' is not a date; allowed: YYYY-MM-DD") from None
    return TipLot(lot, cycle or "", expiry or "")


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
    from fillfinish.batch.service import BatchService, StartRequest
    from fillfinish.inputs import load_config, load_recipe

    if verbose:
        configure_logging(True)

    async def main() -> Any:
        cfg = load_config(config)
        loaded = load_recipe(recipe)
        url = resolve_db(db, cfg.database.url)
        request = StartRequest(loaded, lot, vials, operator, password_of(operator, password_stdin),
                               _materials(material, materials), _tip_lot(tip_lot, tip_cycle, tip_expiry),
                               source=str(recipe))
        with _Progress(progress) as bar:
            service = BatchService(cfg, url, _options(bar, serve, wire_log, signals=True))
            return await service.start(request), url

    outcome, url = run_async(main())
    print_summary(outcome, url)
    raise typer.Exit(0 if outcome.state == "Complete" else 1)


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
    from fillfinish.demo import DemoRequest, run_demo
    from fillfinish.inputs import load_recipe

    if verbose:
        configure_logging(True)
    url = resolve_db(db)
    rate, timeline = _demo_speed(speed)

    async def main() -> Any:
        request = DemoRequest(load_recipe(recipe), vials, rate, timeline, operator, faults)
        with _Progress(True) as bar:
            return await run_demo(request, url, password=password_of(operator, False),
                                  options=_options(bar, 0, signals=True))

    outcome = run_async(main())
    print_summary(outcome, url)
    raise typer.Exit(0 if outcome.state == "Complete" else 1)


def _demo_speed(text: str) -> tuple[float, bool]:
    """--speed: a number > 0 (a fixed speed) or 'max' (a shared timeline that moves only with the machine's waits,
    at most MAX_SPEED_RATE simulated s per real s); UsageError naming what is allowed."""
    if text.strip().lower() == "max":
        return MAX_SPEED_RATE, True
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0.001 or value == float("inf"):
        raise typer.BadParameter(f"{text!r}; allowed: a number >= 0.001 or 'max'", param_hint="--speed")
    return value, False


@batch_app.command("status")
def batch_status(db: Annotated[Optional[str], typer.Option(help="record database URL")] = None) -> None:
    """List batches that did not end."""
    from fillfinish.batch.service import pending_batches

    with reported():
        pending = pending_batches(resolve_db(db))
    for b in pending:
        out.print(f"{b.batch_id}: {b.state}, phase {b.phase}, vials judged {b.vials_judged}")
    if not pending:
        out.print("no unfinished batch")


def _service(config: Path, db: str | None, bar: _Progress | None = None, serve: int | None = None) -> Any:
    """The batch service for a site config and --db (default: the site config's database)."""
    from fillfinish.batch.service import BatchService, SessionOptions
    from fillfinish.inputs import load_config

    cfg = load_config(config)
    options = _options(bar, serve, signals=True) if bar is not None else SessionOptions(notify=notice)
    return BatchService(cfg, resolve_db(db, cfg.database.url), options)


@batch_app.command("recover")
def batch_recover(
    config: Annotated[Path, typer.Option(help="site config TOML")],
    batch_id: Annotated[Optional[str], typer.Argument(help="batch (default: every unfinished one)")] = None,
    db: Annotated[Optional[str], typer.Option(help="record database URL (default: site config)")] = None,
) -> None:
    """After an unclean shutdown: make the line safe, record the gap and the uncertain vial, bring the batch Held."""

    async def main() -> list[Any]:
        return await _service(config, db).recover(batch_id)

    for report in run_async(main()):
        for line in report.lines():
            out.print(line)


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

    async def main() -> Any:
        with _Progress(progress) as bar:
            service = _service(config, db, bar, serve)
            outcome = await service.resume(batch_id, operator, reason, password_of(operator, password_stdin))
            return outcome, service.db_url

    outcome, url = run_async(main())
    print_summary(outcome, url)
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

    async def main() -> Any:
        service = _service(config, db)
        return await service.abort(batch_id, operator, reason, password_of(operator, password_stdin)), service.db_url

    outcome, url = run_async(main())
    print_summary(outcome, url)
