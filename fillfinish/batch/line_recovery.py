"""Make the line safe after an unclean shutdown, before a batch's recovery is written: the one place outside a
running controller that drives hardware (lamp off, pump terminated), used by the batch service's `recover`.

The line is claimed first on the PLC: while a live controller holds it, LineClaimed is raised and nothing is sent.
If the line cannot be reached at all, recovery goes on from the record alone and the returned facts say so.
"""

from __future__ import annotations

from typing import Any

from fillfinish.config import SiteConfig
from fillfinish.record.store import RecordStore


async def make_line_safe(config: SiteConfig, store: RecordStore, batch_id: str) -> dict[str, Any]:
    """Claim the line, record a PLC alarm latched meanwhile in `batch_id`, lamp off, pump terminated; returns what
    was done (`lamp_off`, `pump_terminated`, `plc_alarm`, or `error` when the line could not be made safe)."""
    from fillfinish.line import Line
    from fillfinish.line_safety import record_plc_alarm
    from hal.plc.guard import LineClaimed

    safe: dict[str, Any] = {}
    line = None
    try:
        line = Line(config, what="fillfinish batch recover")
        await line.open()
        alarm = await record_plc_alarm(store, line, batch_id)
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
