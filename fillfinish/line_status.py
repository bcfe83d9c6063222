"""`fillfinish line status`: what the line looks like now, for commissioning and after a crash; changes nothing.

Every PLC variable (lamp, air, particles, door, positioner, the line claim and the PLC's own alarm), who holds the line,
and, when no controller holds it, the pump's status and the balance's reading (reports only: Q, ?, ?6, &, SI; no
move, no claim). While a controller holds the line its serial ports are its own: they are not opened.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="The line: its state now, read-only.", no_args_is_help=True)


async def read_line_status(config: Any) -> dict[str, Any]:
    """Every PLC tag, the holder of the line, the pump's status and the balance's reading (read-only)."""
    from fillfinish.line import _security
    from hal.plc.driver import PlcDriver
    from hal.plc.signals import SIGNALS, readable_signals

    plc = PlcDriver(config.plc.endpoint, dict(config.plc.nodes), security=_security(config),
                    clock_speed=config.clock.speed)
    status: dict[str, Any] = {"line": config.line.id, "plc": {"endpoint": config.plc.endpoint}}
    await plc.connect()
    try:
        names = readable_signals()
        values = await plc.read_many(names)
    finally:
        await plc.close()
    status["plc"]["tags"] = {n: {"value": values[n], "unit": SIGNALS[n].unit} for n in names}
    holder = str(values.get("line_owner") or "")
    status["held_by"] = holder or None
    status["plc_alarm"] = values.get("plc_alarm") or None
    if holder:
        why = f"not queried: the line is held by {holder} (its serial ports are its own)"
        status["pump"] = {"port": config.dispenser.port, "note": why}
        status["balance"] = {"port": config.balance.port, "note": why}
    else:
        status["pump"] = await asyncio.to_thread(_pump_status, config)
        status["balance"] = await asyncio.to_thread(_balance_reading, config)
    return status


def _pump_status(config: Any) -> dict[str, Any]:
    """Q, ?, ?6 and the firmware: reports only, nothing moves."""
    from hal.dispenser.driver import CavroPump

    d = config.dispenser
    out: dict[str, Any] = {"port": d.port}
    try:
        pump = CavroPump.open(d.port, baudrate=d.baudrate, exclusive=True, address=d.address, syringe_ul=d.syringe_ul,
                              model=d.model, resolution=d.resolution, protocol=d.protocol,
                              clock_speed=config.clock.speed)
    except Exception as exc:  # noqa: BLE001 - reported, the other devices are still shown
        return {**out, "error": f"{type(exc).__name__}: {exc}"}
    try:
        st = pump.status()
        out.update(ready=st.ready, error_code=st.error_code, firmware=pump.firmware(),
                   volume_in_syringe_ul=round(pump.volume_in_syringe_ul(), 3), valve=pump.valve_position())
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        pump.close()
    return out


def _balance_reading(config: Any) -> dict[str, Any]:
    """SI: the weight now, stable or not."""
    from hal.balance.driver import MtSicsBalance

    out: dict[str, Any] = {"port": config.balance.port}
    try:
        balance = MtSicsBalance.open(config.balance.port, baudrate=config.balance.baudrate, exclusive=True,
                                     clock_speed=config.clock.speed)
    except Exception as exc:  # noqa: BLE001
        return {**out, "error": f"{type(exc).__name__}: {exc}"}
    try:
        reading = balance.weigh_now()
        out.update(value=reading.value, unit=reading.unit, stable=reading.stable)
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        balance.close()
    return out


@app.command("status")
def status_command(
    config: Annotated[Path, typer.Option(help="site config TOML")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable JSON")] = False,
) -> None:
    """Every PLC tag, who holds the line, the pump's status and the balance's reading; changes nothing."""
    from fillfinish.cli_errors import run as _run
    from fillfinish.inputs import load_config as _load_config

    async def main() -> dict[str, Any]:
        """Load the config and read the line (config errors become one-line messages in _run)."""
        return await read_line_status(_load_config(config))

    status = _run(main())
    if as_json:
        typer.echo(json.dumps(status, indent=2, default=str))
        return
    typer.echo(f"line {status['line']}: {'held by ' + status['held_by'] if status['held_by'] else 'free'}")
    if status["plc_alarm"]:
        typer.echo(f"PLC alarm: {status['plc_alarm']}")
    typer.echo(f"PLC {status['plc']['endpoint']}")
    for name, tag in status["plc"]["tags"].items():
        typer.echo(f"  {name:<24} {tag['value']!r}{' ' + tag['unit'] if tag['unit'] else ''}")
    for device in ("pump", "balance"):
        info = dict(status[device])
        typer.echo(f"{device} {info.pop('port')}: " + ", ".join(f"{k} {v}" for k, v in info.items()))
