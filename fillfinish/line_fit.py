"""Does the recipe fit the line? Checked at `run` (and resume) start, before any device moves.

The pump cannot report its syringe, so the site config names it; a fill or prime volume larger than the syringe, or a
speed the pump cannot run (top speed 5-6000 pulses/s at the configured syringe, model and resolution), would
otherwise only show after a whole UV cycle, at vial 1.
"""

from __future__ import annotations

from typing import Any

from hal.dispenser.protocol import steps_per_stroke, steps_to_volume

TOP_SPEED_PULSES_S = (5, 6000)  # the pump's V command range


def recipe_fit_problems(recipe: Any, config: Any, source: str = "recipe") -> list[str]:
    """Every way `recipe` (a Recipe model) does not fit the site config's pump and syringe; one line each."""
    d, f = config.dispenser, recipe.fill
    problems: list[str] = []
    for name in ("fill_volume_ul", "prime_volume_ul"):
        volume = float(getattr(f, name))
        if volume > d.syringe_ul:
            problems.append(f"{source}: fill.{name}: {volume:g} uL does not fit the configured {d.syringe_ul:g} uL "
                            f"syringe ([dispenser] syringe_ul); allowed: at most {d.syringe_ul:g} uL")
    ul_per_step = steps_to_volume(1, d.syringe_ul, steps_per_stroke(d.model, d.resolution))
    low, high = TOP_SPEED_PULSES_S
    for name in ("dispense_speed_ul_s", "aspirate_speed_ul_s"):
        speed = float(getattr(f, name))
        pulses = speed / ul_per_step
        if not low <= pulses <= high:
            problems.append(
                f"{source}: fill.{name}: {speed:g} uL/s is {pulses:,.0f} pulses/s on a {d.syringe_ul:g} uL "
                f"{d.model} syringe at {d.resolution}; allowed: {low * ul_per_step:.3g}-{high * ul_per_step:.4g} uL/s")
    return problems
