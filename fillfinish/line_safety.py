"""What the controller does with the PLC's own safety program at start: record a latched PLC alarm, then reset it.

A watchdog trip (or a door opened with the lamp on) happens while no controller may be alive; the next controller
that claims the line records it: in the batch it concerns, or with no batch in the line registry (REG-LINE), and only
then resets the latch on the PLC (docs/devices/plc.md).
"""

from __future__ import annotations

from typing import Any

import structlog

from fillfinish.record.registry import append_registry
from fillfinish.record.store import RecordStore

log = structlog.get_logger("fillfinish.line_safety")
LINE_REGISTRY = "line"  # REG-LINE: events of the lines outside any batch


async def record_plc_alarm(store: RecordStore, line: Any, batch_id: str | None = None) -> dict[str, Any] | None:
    """Record the PLC's latched alarm found when `line` was opened (batch entry, else REG-LINE) and reset it on the
    PLC; returns the recorded data (None when there was none)."""
    alarm = line.plc_alarm
    if alarm is None or not (alarm.tripped or alarm.message):
        return None
    data = {"line": line.config.line.id, "watchdog_tripped": alarm.tripped, "message": alarm.message,
            "plc_time": alarm.time, "source": "plc"}
    if batch_id is not None:
        store.append(batch_id, "plc_alarm", data, "plc")
    else:
        append_registry(store, LINE_REGISTRY, "plc_alarm", data, "plc")
    if not await line.guard.reset_alarm():
        log.warning("line.plc_alarm_reset_refused", line=data["line"])
    line.plc_alarm = None
    return data
