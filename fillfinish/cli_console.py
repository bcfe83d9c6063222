"""`fillfinish command | hmi | diagram | sim`: talk to a running controller, open the console, draw the state
diagrams, run the simulator standalone. Errors: fillfinish/cli_errors.py."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fillfinish.cli_errors import out, reported, run as run_async
from fillfinish.errors import UserError
from fillfinish.password_input import PasswordStdinOption


class ControllerUnreachable(UserError):
    """The controller's OPC UA endpoint could not be reached (or its session failed)."""


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
    import asyncio

    from fillfinish.command_roles import SIGNATURE_MEANINGS
    from fillfinish.hmi.client import ClientError, ControllerClient, LoginRefused, RequestRejected
    from fillfinish.password_input import read_password

    with reported():
        password = read_password(f"Password for {user}", from_stdin=password_stdin)

    async def main() -> str:
        client = ControllerClient(endpoint, user=user, password=password, server_certificate=server_certificate)
        try:
            await client.connect()
            try:
                return await client.command(name, reason, password if _canonical(name) in SIGNATURE_MEANINGS else "")
            finally:
                await client.close()
        except (LoginRefused, RequestRejected):
            raise
        except (ClientError, OSError, ConnectionError, asyncio.TimeoutError) as exc:
            raise ControllerUnreachable(f"cannot reach the controller at {endpoint}: {exc}") from None

    out.print(run_async(main()))


def _canonical(name: str) -> str:
    """The PackML command name for a name or number as typed ('' when it is none: the controller explains)."""
    from fillfinish.machine.packml import UnknownCommand, parse_command

    try:
        return parse_command(name.strip()).name
    except (UnknownCommand, ValueError):
        return ""


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
    from fillfinish.inputs import load_config

    seconds = lock_after
    if seconds is None:
        with reported():
            seconds = load_config(config).security.console_lock_after_s if config else DEFAULT_LOCK_AFTER_S
    run_console(endpoint, user=user, lock_after_s=seconds, server_certificate=server_certificate)


def diagram() -> None:
    """Print the PackML and phase-sequence state diagrams (Mermaid), generated from the machine's own tables."""
    from fillfinish.machine import diagram as d

    out.print(d.mermaid(), markup=False, highlight=False)


def sim(
    speed: Annotated[str, typer.Option(help="simulated seconds per real second, or 'max': a shared timeline file "
                                            "beside the site config that moves only with the machine's waits "
                                            "(docs/simulator.md)")] = "1",
    config_out: Annotated[Path, typer.Option(help="where to write the site config pointing at the simulator")] = Path(
        "sim-site.toml"),
    faults: Annotated[Optional[Path], typer.Option(help="TOML fault script")] = None,
    db: Annotated[Optional[str], typer.Option(help="database URL to put in the site config")] = None,
    plc_port: Annotated[int, typer.Option(help="OPC UA port (0: any free port)")] = 0,
    density_g_ml: Annotated[float, typer.Option(min=0.5, max=2.0, help="density of the simulated liquid (g/mL), "
                                                "which the balance weighs")] = 1.0,
    parent_pid: Annotated[Optional[int], typer.Option(hidden=True, help="stop when this process is gone (the "
                                                      "demo's own simulator)")] = None,
) -> None:
    """Run the whole simulator standalone until Ctrl-C; print its endpoints and write the site config."""
    from fillfinish.cli_batch import _demo_speed
    from fillfinish.cli_common import db_url
    from sim.world import WorldSettings

    rate, on_timeline = _demo_speed(speed)
    # the timeline file lies beside the config that names it, so a controller in another process finds it
    timeline = Path(config_out).with_name(Path(config_out).name + ".timeline") if on_timeline else None
    with reported():
        simulator = _start_simulator(rate, Path(config_out), faults, db_url(db), plc_port, timeline,
                                     WorldSettings(density_g_ml=density_g_ml))
    out.print(f"pump (Cavro DT, 9600 8N1)  {simulator.pump_path}")
    out.print(f"balance (MT-SICS)          {simulator.balance_path}")
    out.print(f"PLC (OPC UA)               {simulator.plc.endpoint}")
    out.print(f"speed                      {f'max (shared timeline {timeline})' if timeline else f'x{rate:g}'}")
    out.print(f"site config                {config_out}")
    _serve_until_signal(simulator, parent_pid)


def _start_simulator(speed: float, target: Path, faults: Path | None, db: str, plc_port: int,
                     timeline: Path | None = None, settings: Any = None) -> Any:
    """Start the simulator and write its site config to `target`; UserError naming the option when either fails."""
    import asyncio

    from fillfinish.opcua_cache import standard_space_shelf
    from sim.runner import Simulator

    if target.is_dir() or not (target.parent if str(target.parent) else Path(".")).is_dir():
        why = "it is a folder" if target.is_dir() else f"folder {target.parent} does not exist"
        raise UserError(f"--config-out {target}: {why}; allowed: a file path in an existing folder")
    try:
        simulator = Simulator(speed, settings=settings, faults_file=faults, plc_port=plc_port, timeline=timeline,
                              opcua_shelf=asyncio.run(standard_space_shelf())).start()
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from None
    try:
        simulator.write_site_config(target, db)
    except OSError as exc:
        simulator.stop()
        raise UserError(f"--config-out {target}: {exc.strerror or exc}") from None
    return simulator


def _serve_until_signal(simulator: Any, parent_pid: int | None = None) -> None:
    """Keep the simulator running until SIGTERM or SIGINT (also when started in the background), or until
    `parent_pid` is no longer its parent (the demo that started it is gone), then stop it."""
    import os
    import time

    stop = False

    def _stop(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # Ctrl-C, also when started in the background (SIGINT inherited ignored)
    out.print("Ctrl-C stops the simulator.")  # only once it does (a caller may wait for this line)
    try:
        while not stop and (parent_pid is None or os.getppid() == parent_pid):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
        out.print("simulator stopped")
