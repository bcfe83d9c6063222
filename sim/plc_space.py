"""The simulated PLC's address space: namespace, endpoint path, every variable (folder, browse name, type, initial
value, writable) and the node id of every signal (DEFAULT_NODES, what the simulator's site config maps)."""

from __future__ import annotations

from typing import Any, Literal

from asyncua import ua

from sim.plc_watchdog import GUARD_NODES

NAMESPACE_URI = "urn:fillfinish:plc:machine"
APPLICATION_URI = "urn:fillfinish:sim:plc"
ENDPOINT_PATH = "/fillfinish/plc"
SecurityMode = Literal["None", "Basic256Sha256_SignAndEncrypt"]

# signal name -> (folder, browse name, variant type, initial value, writable)
_VARIABLES: dict[str, tuple[str, str, ua.VariantType, Any, bool]] = {
    "lamp_command": ("UV", "LampCommand", ua.VariantType.Boolean, False, True),
    "lamp_on": ("UV", "LampOn", ua.VariantType.Boolean, False, False),
    "lamp_fault": ("UV", "LampFault", ua.VariantType.Boolean, False, False),
    "lamp_id": ("UV", "LampId", ua.VariantType.String, "", False),
    "lamp_hours": ("UV", "LampHours", ua.VariantType.Double, 0.0, False),
    "lamp_switch_count": ("UV", "SwitchCount", ua.VariantType.Int32, 0, False),
    "uv_ref_mw_cm2": ("UV", "IrradianceRef", ua.VariantType.Double, 0.0, False),
    "uv_tip_mw_cm2": ("UV", "IrradianceTip", ua.VariantType.Double, 0.0, False),
    "hepa_dp_pa": ("HEPA", "DifferentialPressure", ua.VariantType.Double, 0.0, False),
    "downflow_m_s": ("HEPA", "Downflow", ua.VariantType.Double, 0.0, False),
    "hepa_fan_running": ("HEPA", "FanRunning", ua.VariantType.Boolean, False, False),
    "hepa_fault": ("HEPA", "Fault", ua.VariantType.Boolean, False, False),
    "particles_0_5um_per_m3": ("Particles", "Count0_5um", ua.VariantType.Double, 0.0, False),
    "particles_5um_per_m3": ("Particles", "Count5um", ua.VariantType.Double, 0.0, False),
    "particle_flow_l_min": ("Particles", "SampleFlow", ua.VariantType.Double, 0.0, False),
    "particle_sample_seq": ("Particles", "SampleSeq", ua.VariantType.Int32, 0, False),
    "door_closed": ("Door", "Closed", ua.VariantType.Boolean, True, False),
    "door_locked": ("Door", "Locked", ua.VariantType.Boolean, True, False),
    "door_lock_command": ("Door", "LockCommand", ua.VariantType.Boolean, True, True),
    "positioner_target": ("Positioner", "Target", ua.VariantType.Int32, 0, False),
    "positioner_current": ("Positioner", "Current", ua.VariantType.Int32, 0, False),
    "positioner_in_position": ("Positioner", "InPosition", ua.VariantType.Boolean, False, False),
    "positioner_fault": ("Positioner", "Fault", ua.VariantType.Boolean, False, False),
}
_FOLDERS = ("UV", "HEPA", "Particles", "Door", "Positioner")

DEFAULT_NODES: dict[str, str] = {
    **{name: f"ns=2;s={folder}.{browse}" for name, (folder, browse, *_rest) in _VARIABLES.items()},
    "positioner_object": "ns=2;s=Positioner",
    "positioner_move": "ns=2;s=Positioner.Move",
    **GUARD_NODES,  # Objects/Line: claim, heartbeat watchdog, PLC alarm (sim/plc_watchdog.py)
}
