"""The PLC's signal table (docs/decisions/0001): every name the site config's [plc.nodes] must map to a node id.

A real PLC's node ids differ from site to site, so the driver never hard-codes them: the names here are the contract,
the node ids come from the config and are checked against the server at connect.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from asyncua import ua

from hal.plc.errors import PlcConfigError

Access = Literal["write", "read", "subscribed", "object", "method"]


class Signal(NamedTuple):
    """One row of the signal table: Python type of the value (None for an object node), unit, access."""

    type: type | None
    unit: str
    access: Access


SIGNALS: dict[str, Signal] = {
    "lamp_command": Signal(bool, "", "write"),
    "lamp_on": Signal(bool, "", "subscribed"),  # interlocks watch lamp state and faults as they happen
    "lamp_fault": Signal(bool, "", "subscribed"),
    "lamp_id": Signal(str, "", "read"),
    "lamp_hours": Signal(float, "h", "read"),
    "lamp_switch_count": Signal(int, "", "read"),
    "uv_ref_mw_cm2": Signal(float, "mW/cm2", "subscribed"),
    "uv_tip_mw_cm2": Signal(float, "mW/cm2", "subscribed"),
    "hepa_dp_pa": Signal(float, "Pa", "subscribed"),
    "downflow_m_s": Signal(float, "m/s", "subscribed"),
    "hepa_fan_running": Signal(bool, "", "subscribed"),
    "hepa_fault": Signal(bool, "", "subscribed"),
    "particles_0_5um_per_m3": Signal(float, "particles/m3", "subscribed"),
    "particles_5um_per_m3": Signal(float, "particles/m3", "subscribed"),
    "particle_flow_l_min": Signal(float, "L/min", "subscribed"),
    "particle_sample_seq": Signal(int, "", "subscribed"),
    "door_closed": Signal(bool, "", "subscribed"),
    "door_locked": Signal(bool, "", "subscribed"),
    "door_lock_command": Signal(bool, "", "write"),
    "positioner_object": Signal(None, "", "object"),
    "positioner_move": Signal(bool, "", "method"),  # Move(Int32 position) -> Boolean accepted
    "positioner_target": Signal(int, "", "subscribed"),  # the phase watch judges every new target as it happens
    "positioner_current": Signal(int, "", "read"),
    "positioner_in_position": Signal(bool, "", "subscribed"),
    "positioner_fault": Signal(bool, "", "subscribed"),
    # the PLC's own safety program (docs/devices/plc.md "Watchdog and line claim"): one controller per line
    "line_object": Signal(None, "", "object"),
    "line_claim": Signal(str, "", "method"),  # Claim(String owner, String info) -> String ("" granted, else holder)
    "line_release": Signal(bool, "", "method"),  # Release(String owner) -> Boolean
    "line_reset_alarm": Signal(bool, "", "method"),  # ResetAlarm(String owner) -> Boolean
    "line_heartbeat": Signal(int, "", "write"),  # the holder writes a new value every interval
    "line_owner": Signal(str, "", "read"),
    "line_watchdog_s": Signal(float, "s", "read"),
    "line_last_heartbeat": Signal(float, "s", "read"),  # PLC clock, Unix seconds
    "watchdog_tripped": Signal(bool, "", "subscribed"),
    "plc_alarm": Signal(str, "", "subscribed"),  # latched PLC-side alarm text, "" when none
    "plc_alarm_time": Signal(float, "s", "read"),
}

# The OPC UA type each value travels as (writes must name it: a PLC rejects a Double where it expects a Boolean).
VARIANT_TYPES: dict[type, ua.VariantType] = {
    bool: ua.VariantType.Boolean,
    int: ua.VariantType.Int32,
    float: ua.VariantType.Double,
    str: ua.VariantType.String,
}

VARIABLE_ACCESS: frozenset[str] = frozenset({"write", "read", "subscribed"})


def subscribed_signals() -> list[str]:
    """Names of the signals the driver keeps subscribed (the 'read, subscribed' rows of the table)."""
    return [name for name, sig in SIGNALS.items() if sig.access == "subscribed"]


def readable_signals() -> list[str]:
    """Names of every variable signal (read, subscribed and the write commands, which read back)."""
    return [name for name, sig in SIGNALS.items() if sig.access in VARIABLE_ACCESS]


def validate_nodes(nodes: dict[str, str]) -> None:
    """Check a [plc.nodes] mapping: every signal named once, no unknown names, every value a well-formed node id."""
    if not isinstance(nodes, dict):
        raise PlcConfigError(f"[plc.nodes] must be a table of signal name -> node id string, got {type(nodes).__name__}")
    problems: list[str] = []
    missing = [name for name in SIGNALS if name not in nodes]
    unknown = sorted(name for name in nodes if name not in SIGNALS)
    if missing:
        problems.append(f"missing signal(s): {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown signal(s): {', '.join(map(repr, unknown))} (allowed: {', '.join(SIGNALS)})")
    for name, node_id in nodes.items():
        if name not in SIGNALS:
            continue
        if not isinstance(node_id, str) or not node_id.strip():
            problems.append(f"{name}: node id must be a non-empty string such as 'ns=2;s=UV.LampCommand', got {node_id!r}")
            continue
        try:
            ua.NodeId.from_string(node_id)
        except ua.UaStringParsingError as exc:
            problems.append(f"{name}: {node_id!r} is not an OPC UA node id (e.g. 'ns=2;s=UV.LampCommand'): {exc}")
    if problems:
        raise PlcConfigError("[plc.nodes]: " + "; ".join(problems))
