"""How the console words the controller's values for an operator: human labels with units ("Door: closed, locked"),
short trends against their limits, the UV dose against its target. Pure functions, tested without a screen."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SPARK_CHARS = "▁▂▃▄▅▆▇█"
TREND_POINTS = 40
"""Samples kept per trend (one per console refresh where the value changed)."""

TRENDED: tuple[str, ...] = ("particles_0_5um_per_m3", "particles_5um_per_m3", "hepa_dp_pa")
"""The values the console draws a trend of."""


@dataclass(frozen=True)
class Label:
    """How one environment value is shown: a label for people, the unit and the number format."""

    text: str
    unit: str
    fmt: str = "{:g}"


LABELS: dict[str, Label] = {
    "particles_0_5um_per_m3": Label("Particles >= 0.5 um", "/m3", "{:,.0f}"),
    "particles_5um_per_m3": Label("Particles >= 5 um", "/m3", "{:,.0f}"),
    "particle_flow_l_min": Label("Particle sample flow", "L/min", "{:.1f}"),
    "particle_sample_seq": Label("Particle sample no.", "", "{:.0f}"),
    "hepa_dp_pa": Label("HEPA differential pressure", "Pa", "{:.1f}"),
    "downflow_m_s": Label("Downflow air speed", "m/s", "{:.2f}"),
    "uv_ref_mw_cm2": Label("UV-C irradiance (reference point)", "mW/cm2", "{:.2f}"),
    "uv_tip_mw_cm2": Label("UV-C irradiance (tip station)", "mW/cm2", "{:.2f}"),
}

# boolean signals: (label, text when true, text when false); door and lamp are combined below
STATES: dict[str, tuple[str, str, str]] = {
    "hepa_fan_running": ("HEPA fan", "running", "STOPPED"),
    "hepa_fault": ("HEPA unit", "FAULT", "ok"),
    "lamp_on": ("UV lamp", "on", "off"),
    "lamp_fault": ("UV lamp fault", "FAULT", "none"),
    "positioner_in_position": ("Vial positioner", "in position", "moving"),
    "positioner_fault": ("Vial positioner fault", "FAULT", "none"),
}
BAD_STATES = {("hepa_fan_running", False), ("hepa_fault", True), ("lamp_fault", True), ("positioner_fault", True)}


def door_text(env: Mapping[str, float]) -> str | None:
    """'closed, locked' / 'closed, UNLOCKED' / 'OPEN' (None when the PLC has not reported the door)."""
    if "door_closed" not in env:
        return None
    if not env["door_closed"]:
        return "OPEN"
    locked = env.get("door_locked")
    return "closed" if locked is None else ("closed, locked" if locked else "closed, UNLOCKED")


def readable_rows(env: Mapping[str, float]) -> list[tuple[str, str, str, bool]]:
    """(key, label, value with unit, bad) for every value an operator reads, in a stable order."""
    rows: list[tuple[str, str, str, bool]] = []
    door = door_text(env)
    if door is not None:
        rows.append(("door", "Door", door, door != "closed, locked"))
    for key, (label, yes, no) in STATES.items():
        if key in env:
            value = bool(env[key])
            rows.append((key, label, yes if value else no, (key, value) in BAD_STATES))
    for key in sorted(env):
        if key in STATES or key in ("door_closed", "door_locked", "door_lock_command", "lamp_command"):
            continue
        label = LABELS.get(key, Label(key.replace("_", " "), ""))
        text = label.fmt.format(float(env[key]))
        rows.append((key, label.text, f"{text} {label.unit}".strip(), False))
    return rows


def sparkline(values: Sequence[float], high: float | None, width: int = TREND_POINTS) -> str:
    """A one-line trend of the last `width` values, scaled from 0 to max(limit, largest value)."""
    points = list(values)[-width:]
    if not points:
        return ""
    top = max([high or 0.0, *points]) or 1.0
    scale = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[max(0, min(scale, round(v / top * scale)))] for v in points)


def uv_text(dose: float, target: float, phase: str) -> str:
    """'UV dose: 61.5 / 120.0 mJ/cm2 (51 %) - UV cycle running' (the target only when known)."""
    running = " - UV cycle running" if phase == "uv_cycle" else ""
    if target > 0:
        return f"UV dose: {dose:.1f} / {target:.1f} mJ/cm2 ({min(dose / target, 9.99) * 100:.0f} %){running}"
    return f"UV dose: {dose:.1f} mJ/cm2{running}"
