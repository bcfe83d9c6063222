"""How the console words one decoded controller status: the banner, the state colour, the batch lines, the
environment and alarm table rows and the trend lines. Pure functions of the status (tested without a screen)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from rich.text import Text

from fillfinish.hmi.limits import EnvLimit
from fillfinish.hmi.readable import LABELS, TRENDED, readable_rows, sparkline, uv_text

STALE_AFTER_S = 3.0
"""A controller whose Heartbeat tag has not changed for this long is shown as not updating."""

_STATE_CLASSES: dict[str, str] = {
    "Execute": "state-execute",
    "Held": "state-held",
    "Holding": "state-held",
    "Suspended": "state-held",
    "Suspending": "state-held",
    "Aborted": "state-aborted",
    "Aborting": "state-aborted",
    "Stopped": "state-stopped",
    "Stopping": "state-stopped",
    "Clearing": "state-stopped",
    "Idle": "state-idle",
    "Complete": "state-complete",
    "Completing": "state-acting",
    "Starting": "state-acting",
    "Resetting": "state-acting",
    "Unholding": "state-acting",
    "Unsuspending": "state-acting",
}
ALL_STATE_CLASSES = frozenset(_STATE_CLASSES.values()) | {"state-unknown"}
"""Every CSS class a state label may carry (removed before the current one is added)."""

URGENT_SEVERITIES = ("interlock", "fault", "action", "security")
"""Alarm severities shown in bold red while unacknowledged."""


def state_class(state_name: str) -> str:
    """The CSS class colouring a PackML state (run green, held amber, aborted red, ...)."""
    return _STATE_CLASSES.get(state_name, "state-unknown")


def state_name(status: Mapping[str, Any]) -> str:
    """The PackML state's name ('Execute'; 'State 7' when the controller gave only the number)."""
    return str(status.get("StateCurrentName") or f"State {status.get('StateCurrent')}")


def banner(status: Mapping[str, Any], heartbeat_age_s: float, connected_as: str) -> tuple[str, str]:
    """(text, CSS class 'ok' or 'warn') of the connection banner: a status error or a stale heartbeat warns."""
    if status.get("StatusError"):
        return f"CONTROLLER STATUS ERROR: {status['StatusError']} (values may be stale)", "warn"
    if heartbeat_age_s > STALE_AFTER_S:
        return f"CONTROLLER NOT UPDATING for {heartbeat_age_s:.0f} s (values may be stale)", "warn"
    return connected_as, "ok"


def info_lines(status: Mapping[str, Any]) -> dict[str, str]:
    """The batch information lines by widget id: unit mode, batch, product, phase, stop reason (and hold cause)."""
    cause = status.get("HoldCause") or ""
    return {
        "#mode": f"Unit mode:   {status.get('UnitModeCurrentName')} ({status.get('UnitModeCurrent')})",
        "#batch": f"Batch:       {status.get('BatchId') or '-'}",
        "#product": f"Product:     {status.get('Product') or '-'}",
        "#phase": f"Phase:       {str(status.get('Phase') or '-').replace('_', ' ')}",
        "#stop-reason": f"Stop reason: {status.get('StopReason') or '-'}" + (f"   (held by: {cause})" if cause else ""),
    }


def counts(status: Mapping[str, Any]) -> tuple[int, int, str]:
    """(progress bar total, progress, text) of the vial counts: filled of planned, rejected."""
    planned = int(status.get("PlannedCount") or 0)
    processed = int(status.get("ProdProcessedCount") or 0)
    defective = int(status.get("ProdDefectiveCount") or 0)
    total = max(planned, 1)
    return total, min(processed, total), f"filled {processed} / {planned} planned   rejected {defective}"


def uv_progress(status: Mapping[str, Any]) -> tuple[float, float, str]:
    """(bar total, progress, text) of the UV dose in mJ/cm2 against its target."""
    dose = float(status.get("UvDose_mJ_cm2") or 0.0)
    target = float(status.get("UvDoseTarget_mJ_cm2") or 0.0)
    total = max(target, 1.0)
    return total, min(dose, total), uv_text(dose, target, str(status.get("Phase") or ""))


def environment_rows(env: Mapping[str, float], limits: Mapping[str, EnvLimit]) -> list[tuple[Any, ...]]:
    """(key, label, value, limit, ok / OUT / CHECK) per reading, out-of-limit values in red."""
    rows: list[tuple[Any, ...]] = []
    for key, label, text, bad in readable_rows(env):
        limit = limits.get(key)
        if limit is None:
            flag = Text("CHECK", style="bold white on red") if bad else Text("ok", style="green")
            rows.append((key, label, Text(text, style="bold red") if bad else text, "-", flag))
        elif limit.ok(float(env[key])):
            rows.append((key, label, text, limit.describe(), Text("ok", style="green")))
        else:
            rows.append((key, label, Text(text, style="bold red"), limit.describe(),
                         Text("OUT", style="bold white on red")))
    return rows


def add_to_trends(trends: Mapping[str, deque[float]], env: Mapping[str, float]) -> None:
    """Append this status's value of every trended reading it has."""
    for key in TRENDED:
        if key in env:
            trends[key].append(float(env[key]))


def trend_text(env: Mapping[str, float], trends: Mapping[str, deque[float]], limits: Mapping[str, EnvLimit]) -> str:
    """Two lines per trended reading in this status: value against its limit, then its sparkline."""
    lines = []
    for key in TRENDED:
        if key not in env:
            continue
        value = float(env[key])
        limit = limits.get(key)
        label = LABELS[key]
        bound = f"limit {limit.describe()}" if limit else "no limit"
        lines.append(f"{label.text}: {label.fmt.format(value)} {label.unit} ({bound})")
        lines.append(f"  {sparkline(trends[key], limit.high if limit else None)}")
    return "\n".join(lines) or "trends: no readings yet"


def alarm_rows(alarms: list[dict[str, Any]], security: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(id, ack, severity, source, message, time) of the batch alarms, then of the security events (ids S1, S2...)."""
    rows: list[tuple[Any, ...]] = [
        (
            int(a.get("alarm_id", 0)),
            f"by {a.get('acknowledged_by')}" if a.get("acknowledged") else "UNACK",
            str(a.get("severity", "")),
            str(a.get("source", "")),
            str(a.get("message", "")),
            str(a.get("time", ""))[:19].replace("T", " "),
        )
        for a in alarms
    ]
    for i, e in enumerate(security, start=1):
        rows.append((f"S{i}", "-", "security", str(e.get("event", "")),
                     f"{e.get('user', '')}: {e.get('detail', '')}", str(e.get("time", ""))[:19].replace("T", " ")))
    return rows


def alarm_style(row: tuple[Any, ...]) -> str:
    """The text style of an alarm row: bold (red when urgent) while unacknowledged or a security event."""
    if row[1] != "UNACK" and row[2] != "security":
        return ""
    return "bold red" if row[2] in URGENT_SEVERITIES else "bold"
