"""The recipe schema: one TOML file per product, validated field by field and across fields (pydantic 2).

Units are in the field names (_ul, _s, _mj_cm2, ...). Unknown fields are errors, so a misspelt limit can never be
silently ignored. The numbers that come from EU GMP Annex 1 (grade A particle limits, sample flow) are bounds here;
docs/recipes.md explains every field.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fillfinish.recipes.sampling import RetainedSamples, ViableMonitoring
from fillfinish.validation import RuleViolations

__all__ = [
    "ANNEX1_GRADE_A_0_5UM_PER_M3",
    "ANNEX1_GRADE_A_5UM_PER_M3",
    "ANNEX1_MIN_SAMPLE_FLOW_L_MIN",
    "DOWNFLOW_GUIDANCE_M_S",
    "CheckWeigh",
    "Environment",
    "Fill",
    "HoldTimes",
    "Recipe",
    "RecipeInfo",
    "Tips",
    "Uv",
]

ANNEX1_GRADE_A_0_5UM_PER_M3 = 3520.0  # EU GMP Annex 1 (2022) table 5 / ISO 14644-1 class 5, >= 0.5 um
ANNEX1_GRADE_A_5UM_PER_M3 = 29.0  # EU GMP Annex 1 (2022) table 5, >= 5 um
ANNEX1_MIN_SAMPLE_FLOW_L_MIN = 28.3  # Annex 1 9.16 guidance: 1 ft3/min
DOWNFLOW_GUIDANCE_M_S = (0.36, 0.54)  # Annex 1 glossary, unidirectional airflow guidance at the working position

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

Seconds = Annotated[float, Field(gt=0, le=7 * 24 * 3600)]
LooseDate = Annotated[datetime.date, Field(strict=False)]  # TOML date (2026-01-15) or the text "2026-01-15"


class _Section(BaseModel):
    """Base for every recipe table: strict types, unknown fields forbidden, immutable."""

    model_config = _STRICT


class RecipeInfo(_Section):
    """[recipe]: identity, version and approval state of the recipe."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$",
                      description="recipe id: lower-case letters, digits and '-', e.g. 'fgf2'")
    product_name: str = Field(min_length=1, max_length=200, description="product as printed on the batch record")
    product_code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$",
                              description="catalogue code: letters, digits, '.', '_', '-'")
    version: int = Field(ge=1, description="recipe version, raised on every approved change")
    status: Literal["draft", "approved"] = Field(description="only approved recipes may run a batch")
    mode: Literal["production", "media_fill"] = Field(description="production batch or aseptic process simulation")
    approved_by: str | None = Field(default=None, min_length=1, max_length=200,
                                    description="QA approver's user id; required when status = 'approved'")
    approved_on: LooseDate | None = Field(default=None, description="approval date; required when approved")

    @model_validator(mode="after")
    def _approval(self) -> Self:
        """Approved recipes name their approver and date; drafts carry neither."""
        bad: list[tuple[str, str, str]] = []
        if self.status == "approved":
            if self.approved_by is None:
                bad.append(("approved_by", "missing although status = 'approved'", "the QA approver's user id"))
            if self.approved_on is None:
                bad.append(("approved_on", "missing although status = 'approved'", "the approval date, YYYY-MM-DD"))
        else:
            for name in ("approved_by", "approved_on"):
                if getattr(self, name) is not None:
                    bad.append((name, "set although status = 'draft'",
                                "no approval fields on a draft; set status = 'approved' only when QA approves"))
        if bad:
            raise RuleViolations(bad)
        return self


class Fill(_Section):
    """[fill]: volume per vial, the check-weigh tolerance, the batch size range and the pump settings."""

    fill_volume_ul: float = Field(gt=0, le=50_000, description="target fill volume per vial, microlitres")
    density_g_ml: float = Field(ge=0.9, le=1.5, description="density of the liquid, g/mL (expected weight = "
                                                            "volume x density)")
    tolerance_percent: float | None = Field(default=None, gt=0, le=20,
                                            description="+/- tolerance of the fill, % of fill volume; "
                                                        "give this or tolerance_ul")
    tolerance_ul: float | None = Field(default=None, gt=0,
                                       description="+/- tolerance of the fill, microlitres; give this or "
                                                   "tolerance_percent")
    vial_count_min: int = Field(ge=1, le=100_000, description="smallest batch, vials")
    vial_count_max: int = Field(ge=1, le=100_000, description="largest batch, vials")
    aspirate_speed_ul_s: float = Field(gt=0, le=10_000, description="pump aspiration speed, microlitres per second")
    dispense_speed_ul_s: float = Field(gt=0, le=10_000, description="pump dispense speed, microlitres per second")
    prime_volume_ul: float = Field(ge=0, le=100_000, description="volume purged to waste before the first vial, "
                                                                 "microlitres")

    @model_validator(mode="after")
    def _cross(self) -> Self:
        """Exactly one tolerance, a tolerance smaller than the fill, min <= max vials."""
        bad: list[tuple[str, str, str]] = []
        if (self.tolerance_percent is None) == (self.tolerance_ul is None):
            both = "both given" if self.tolerance_percent is not None else "neither given"
            bad.append(("tolerance_percent", f"give exactly one of tolerance_percent and tolerance_ul ({both})",
                        "tolerance_percent (0-20 %) or tolerance_ul (microlitres), not both"))
        if self.tolerance_ul is not None and self.tolerance_ul >= self.fill_volume_ul:
            bad.append(("tolerance_ul", f"{self.tolerance_ul} is not below fill_volume_ul = {self.fill_volume_ul}",
                        "a tolerance smaller than the fill volume"))
        if self.vial_count_min > self.vial_count_max:
            bad.append(("vial_count_min", f"{self.vial_count_min} is above vial_count_max = {self.vial_count_max}",
                        "vial_count_min <= vial_count_max"))
        if bad:
            raise RuleViolations(bad)
        return self

    def vials_refusal(self, vials: int) -> str | None:
        """Why a batch of `vials` is outside this recipe's batch size (None when it fits)."""
        if self.vial_count_min <= vials <= self.vial_count_max:
            return None
        return f"{vials} is outside the recipe's batch size; allowed: {self.vial_count_min}-{self.vial_count_max} vials"

    @property
    def tolerance_abs_ul(self) -> float:
        """The +/- tolerance in microlitres, whichever way the recipe gives it."""
        if self.tolerance_ul is not None:
            return self.tolerance_ul
        return self.fill_volume_ul * (self.tolerance_percent or 0.0) / 100.0

    @property
    def expected_net_g(self) -> float:
        """Expected net weight of one fill, grams (volume x density)."""
        return self.fill_volume_ul / 1000.0 * self.density_g_ml

    @property
    def tolerance_g(self) -> float:
        """The +/- tolerance as a weight, grams."""
        return self.tolerance_abs_ul / 1000.0 * self.density_g_ml


class Uv(_Section):
    """[uv]: the enclosure UV-C cycle, dosed at the validated worst-case reference point."""

    target_dose_mj_cm2: float = Field(gt=0, le=10_000, description="UV-C dose to reach at the worst-case reference "
                                                                   "point, mJ/cm2")
    min_irradiance_mw_cm2: float = Field(gt=0, le=100, description="validated minimum irradiance at the reference "
                                                                   "point once warmed up, mW/cm2; below it the "
                                                                   "cycle faults")
    max_cycle_s: Seconds = Field(description="longest allowed cycle, seconds; longer faults the cycle")

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        """A lamp at the validated minimum must reach the dose within the maximum cycle time."""
        needed = self.target_dose_mj_cm2 / self.min_irradiance_mw_cm2
        if needed > self.max_cycle_s:
            raise RuleViolations([(
                "max_cycle_s",
                f"{self.max_cycle_s:g} s is too short: target_dose_mj_cm2 / min_irradiance_mw_cm2 = {needed:g} s",
                f"max_cycle_s >= {needed:g} (plus lamp warm-up)",
            )])
        return self


class Tips(_Section):
    """[tips]: how the product-contact dispensing tips are made sterile (Annex 1 5.5, 8.71)."""

    method: Literal["uv", "presterilised", "uv_and_presterilised"] = Field(
        description="UV exposure at the tip station, a pre-sterilised tip lot, or both")
    uv_target_dose_mj_cm2: float | None = Field(default=None, gt=0, le=10_000,
                                                description="UV-C dose at the tip station, mJ/cm2; "
                                                            "required for the uv methods")
    require_presterilised_lot: bool = Field(description="a pre-sterilised tip lot (cycle id, expiry) must be "
                                                        "recorded; Annex 1 8.71: UV alone does not sterilise")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """UV methods need a dose; the lot requirement matches the method."""
        bad: list[tuple[str, str, str]] = []
        uses_uv = self.method in ("uv", "uv_and_presterilised")
        uses_lot = self.method in ("presterilised", "uv_and_presterilised")
        if uses_uv and self.uv_target_dose_mj_cm2 is None:
            bad.append(("uv_target_dose_mj_cm2", f"missing although method = '{self.method}'",
                        "a dose in mJ/cm2 > 0 for methods 'uv' and 'uv_and_presterilised'"))
        if not uses_uv and self.uv_target_dose_mj_cm2 is not None:
            bad.append(("uv_target_dose_mj_cm2", "set although method = 'presterilised' (no UV step for tips)",
                        "leave it out, or use method = 'uv_and_presterilised'"))
        if uses_lot and not self.require_presterilised_lot:
            bad.append(("require_presterilised_lot", f"false although method = '{self.method}'",
                        "true for methods 'presterilised' and 'uv_and_presterilised'"))
        if not uses_lot and self.require_presterilised_lot:
            bad.append(("require_presterilised_lot", "true although method = 'uv' records no tip lot",
                        "method = 'uv_and_presterilised' to require a lot in addition to UV"))
        if bad:
            raise RuleViolations(bad)
        return self


class HoldTimes(_Section):
    """[hold_times]: maximum times between steps (Annex 1 8.18); exceeding one blocks the fill until redone."""

    uv_end_to_fill_start_s: Seconds = Field(description="end of the UV cycle to start of filling, seconds")
    tips_sterilised_to_use_s: Seconds = Field(description="tips sterilised (UV step or lot opened) to use, seconds")
    fill_duration_max_s: Seconds = Field(description="start to end of filling, seconds")


class CheckWeigh(_Section):
    """[check_weigh]: the gravimetric sampling plan and when repeated rejects hold the machine."""

    plan: Literal["every", "every_nth"] = Field(description="weigh every vial, or every Nth plus first and last")
    every_nth: int | None = Field(default=None, ge=2, le=10_000,
                                  description="N for plan = 'every_nth'; first and last vial are always weighed")
    consecutive_rejects_hold: int = Field(ge=1, le=100, description="this many out-of-tolerance vials in a row "
                                                                    "hold the machine")

    @model_validator(mode="after")
    def _plan(self) -> Self:
        """every_nth is given exactly when the plan uses it."""
        if self.plan == "every_nth" and self.every_nth is None:
            raise RuleViolations([("every_nth", "missing although plan = 'every_nth'", "a whole number >= 2")])
        if self.plan == "every" and self.every_nth is not None:
            raise RuleViolations([("every_nth", "set although plan = 'every' (every vial is weighed)",
                                   "leave it out, or use plan = 'every_nth'")])
        return self

    def weighs(self, index: int, count: int) -> bool:
        """Whether vial `index` (1-based) of `count` is weighed under this plan."""
        if self.plan == "every" or index in (1, count):
            return True
        return (index - 1) % (self.every_nth or 1) == 0


class Environment(_Section):
    """[environment]: grade A particle limits, HEPA and airflow ranges, sample flow and the post-fill window."""

    particles_0_5um_alert_per_m3: float = Field(gt=0, le=ANNEX1_GRADE_A_0_5UM_PER_M3,
                                                description="alert level, particles >= 0.5 um per m3")
    particles_0_5um_action_per_m3: float = Field(gt=0, le=ANNEX1_GRADE_A_0_5UM_PER_M3,
                                                 description="action limit, particles >= 0.5 um per m3; "
                                                             "Annex 1 grade A: 3520")
    particles_5um_alert_per_m3: float = Field(gt=0, le=ANNEX1_GRADE_A_5UM_PER_M3,
                                              description="alert level, particles >= 5 um per m3")
    particles_5um_action_per_m3: float = Field(gt=0, le=ANNEX1_GRADE_A_5UM_PER_M3,
                                               description="action limit, particles >= 5 um per m3; "
                                                           "Annex 1 grade A: 29")
    consecutive_alerts_to_action: int = Field(ge=2, le=100, description="this many alert samples in a row count "
                                                                        "as an action excursion")
    hepa_dp_min_pa: float = Field(gt=0, le=2000, description="lowest HEPA differential pressure, Pa (below: leak, "
                                                             "bypass or fan failure)")
    hepa_dp_max_pa: float = Field(gt=0, le=2000, description="highest HEPA differential pressure, Pa (above: "
                                                             "loaded filter)")
    downflow_min_m_s: float = Field(gt=0, le=2.0, description="lowest downflow velocity at the working position, "
                                                              "m/s (guidance 0.36-0.54)")
    downflow_max_m_s: float = Field(gt=0, le=2.0, description="highest downflow velocity at the working position, "
                                                              "m/s (guidance 0.36-0.54)")
    min_sample_flow_l_min: float = Field(ge=ANNEX1_MIN_SAMPLE_FLOW_L_MIN, le=1000,
                                         description="lowest particle counter sample flow, L/min (Annex 1: 28.3)")
    post_fill_monitoring_s: float = Field(ge=60, le=24 * 3600,
                                          description="monitoring window after the last vial, seconds (at least "
                                                      "one 1-minute particle sample)")

    @model_validator(mode="after")
    def _ranges(self) -> Self:
        """Alert below action, min below max."""
        bad: list[tuple[str, str, str]] = []
        for size in ("0_5um", "5um"):
            alert = getattr(self, f"particles_{size}_alert_per_m3")
            action = getattr(self, f"particles_{size}_action_per_m3")
            if alert >= action:
                bad.append((f"particles_{size}_alert_per_m3",
                            f"alert level {alert:g} is not below the action limit {action:g}",
                            f"an alert level < particles_{size}_action_per_m3 (e.g. about half of it)"))
        for low, high, unit in (("hepa_dp_min_pa", "hepa_dp_max_pa", "Pa"),
                                ("downflow_min_m_s", "downflow_max_m_s", "m/s")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo >= hi:
                bad.append((low, f"{lo:g} {unit} is not below {high} = {hi:g} {unit}", f"{low} < {high}"))
        if bad:
            raise RuleViolations(bad)
        return self


class Recipe(_Section):
    """A complete recipe file: [recipe], [fill], [uv], [tips], [hold_times], [check_weigh], [environment], and the
    optional sampling plan [viable_monitoring], [retained_samples] (fillfinish/recipes/sampling.py)."""

    recipe: RecipeInfo
    fill: Fill
    uv: Uv
    tips: Tips
    hold_times: HoldTimes
    check_weigh: CheckWeigh
    environment: Environment
    viable_monitoring: ViableMonitoring = Field(default_factory=ViableMonitoring)
    retained_samples: RetainedSamples = Field(default_factory=RetainedSamples)

    @property
    def approved(self) -> bool:
        """Whether the recipe may run a batch."""
        return self.recipe.status == "approved"
