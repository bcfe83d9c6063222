"""The limits the console shows next to environment values: Annex 1 defaults until the running batch's recipe
publishes its own (the EnvironmentLimits tag), with units (/m3, m/s, L/min, Pa)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvLimit:
    """A displayed limit for one environment value: low and/or high bound, unit, and where it comes from."""

    low: float | None
    high: float | None
    unit: str
    basis: str

    def describe(self) -> str:
        """'0.36-0.54 m/s', '<= 3520 /m3' or '>= 28.3 L/min'."""
        if self.low is not None and self.high is not None:
            return f"{self.low:g}-{self.high:g} {self.unit}"
        if self.high is not None:
            return f"<= {self.high:g} {self.unit}"
        if self.low is not None:
            return f">= {self.low:g} {self.unit}"
        return self.unit

    def ok(self, value: float) -> bool:
        """True when value is within the bounds."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


DEFAULT_LIMITS: dict[str, EnvLimit] = {
    "particles_0_5um_per_m3": EnvLimit(None, 3520.0, "/m3", "Annex 1 grade A action"),
    "particles_5um_per_m3": EnvLimit(None, 29.0, "/m3", "Annex 1 grade A action"),
    "downflow_m_s": EnvLimit(0.36, 0.54, "m/s", "Annex 1 guidance"),
    "particle_flow_l_min": EnvLimit(28.3, None, "L/min", "Annex 1 sample flow"),
}
"""Limits shown next to environment values when the caller gives none (the recipe's limits are stricter)."""

UNITS: dict[str, str] = {"hepa_dp_pa": "Pa", "downflow_m_s": "m/s", "particle_flow_l_min": "L/min",
                         "particles_0_5um_per_m3": "/m3", "particles_5um_per_m3": "/m3"}
"""The unit of each environment value a recipe may limit."""


def apply_recipe_limits(limits: dict[str, EnvLimit],
                        recipe_limits: Mapping[str, Sequence[float | None]]) -> None:
    """Replace the shown limits by the running batch's recipe limits ((low, high) per value), keeping each unit."""
    for key, (low, high) in recipe_limits.items():
        unit = limits[key].unit if key in limits else UNITS.get(key, "")
        limits[key] = EnvLimit(low, high, unit, "recipe")
