"""The controller's Status tag values as pure functions of one ControllerView snapshot, and the PackML command
numbers the Command method accepts (OPC 30050 / ISA-TR88.00.02). Used by the OPC UA server (fillfinish/server.py)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from asyncua import ua

from fillfinish.control import StatusView
from fillfinish.machine.packml import Command, UnknownCommand, parse_command

# PackML command numbers (OPC 30050 / ISA-TR88.00.02): Reset 1 .. Complete 10.
COMMAND_NUMBERS: dict[str, int] = {c.name: int(c.value) for c in Command}
UNIT_MODE_NAMES: dict[int, str] = {1: "Production", 2: "Maintenance", 3: "Manual", 4: "Media fill (APS)"}

INITIAL_VALUES: dict[ua.VariantType, Any] = {
    ua.VariantType.Int32: 0,
    ua.VariantType.String: "",
    ua.VariantType.Double: 0.0,
}
"""The value a Status tag of each variant type holds before the first snapshot is published."""


def command_name(value: object) -> str:
    """The canonical PackML command name for a number (1..10) or a name (any case); UnknownCommand (a ValueError)
    lists what is allowed."""
    if not isinstance(value, int | str) or isinstance(value, bool):
        raise UnknownCommand(value)
    return parse_command(value).name


def status_tags(status: StatusView) -> dict[str, Any]:
    """The Status tag values for one snapshot (pure; JSON for the alarm list and the environment)."""
    alarms = [dataclasses.asdict(a) for a in status.alarms]
    return {
        "StateCurrent": int(status.state),
        "StateCurrentName": status.state_name,
        "UnitModeCurrent": int(status.unit_mode),
        "UnitModeCurrentName": UNIT_MODE_NAMES.get(int(status.unit_mode), f"Mode {status.unit_mode}"),
        "BatchId": status.batch_id or "",
        "Product": status.product or "",
        "Phase": status.phase or "",
        "PlannedCount": int(status.planned),
        "ProdProcessedCount": int(status.processed),
        "ProdDefectiveCount": int(status.defective),
        "UvDose_mJ_cm2": float(status.uv_dose_mj_cm2),
        "UvDoseTarget_mJ_cm2": float(getattr(status, "uv_target_mj_cm2", 0.0) or 0.0),
        "StopReason": status.stop_reason,
        "HoldCause": str(getattr(status, "hold_cause", "") or ""),
        "ValidCommands": ",".join(status.valid_commands),
        "Alarms": json.dumps(alarms, sort_keys=True),
        "AlarmCount": len(alarms),
        "UnacknowledgedAlarmCount": sum(1 for a in status.alarms if not a.acknowledged),
        "Environment": json.dumps({k: float(v) for k, v in status.environment.items()}, sort_keys=True),
        "EnvironmentLimits": json.dumps({k: list(v) for k, v in status.environment_limits.items()}, sort_keys=True),
    }
