"""The line checks of Starting: devices, environment, door, APS validity, lamp life, balance check; each recorded."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from fillfinish.batch.uv_cycle import latest

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController


async def line_checks(c: BatchController) -> list[str]:
    """Every check recorded as a `line_check` entry; returns the failed ones as 'name: detail'."""
    plc, site = c.plc, c.site.site
    today = dt.datetime.fromtimestamp(c.clock.now(), dt.UTC).date()
    checks: list[tuple[str, bool, str]] = []
    checks.append(("plc_connected", bool(plc.connected), "PLC answers"))
    checks.append(("door_closed", bool(latest(plc, "door_closed")), "door closed"))
    hours = float(await plc.read("lamp_hours"))
    checks.append(("lamp_life", hours < site.lamp_max_hours,
                   f"lamp hours {hours:.0f} below the limit {site.lamp_max_hours:g} h"))
    if hours >= site.lamp_warn_hours:
        await c.recorder.awrite("warning", source="lamp",
                                message=f"lamp hours {hours:.0f} >= warning {site.lamp_warn_hours:g}")
    checks.append(("lamp_fault", not latest(plc, "lamp_fault"), "no lamp fault"))
    aps_last, aps_until = site.aps_last_success, site.aps_last_success + dt.timedelta(days=site.aps_validity_days)
    aps = c.master_data.get("aps") or {}
    if aps.get("valid_until"):  # the line's APS from the record (masterdata/aps.py), checked again here
        aps_last, aps_until = aps["last_pass"], dt.date.fromisoformat(aps["valid_until"])
    if c.r.recipe.mode == "production":
        checks.append(("aps_valid", today <= aps_until, f"last successful media fill {aps_last} valid until {aps_until}"))
    checks.append(("balance_check", today <= site.balance_check_valid_until,
                   f"balance check valid until {site.balance_check_valid_until}"))
    assert c.monitor is not None
    env_problems = c.monitor.problems()
    checks.append(("environment", not env_problems, "; ".join(env_problems) or "HEPA, airflow, particles in limits"))
    for name, ok, detail in checks:
        await c.recorder.awrite("line_check", check=name, ok=ok, detail=detail)
    return [f"{name}: {detail}" for name, ok, detail in checks if not ok]
