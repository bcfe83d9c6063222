"""Site settings of the master-data rules: `[master_data]` and `[master_data.floor]` in the site config.

Every field has a default so existing site configs (and the simulator's emitted one) stay valid. Imports only
pydantic, so fillfinish/config.py can use it without a cycle.
"""

from __future__ import annotations

import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MasterDataSettings", "SiteFloor"]

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
LooseDate = Annotated[datetime.date, Field(strict=False)]


class SiteFloor(BaseModel):
    """[master_data.floor]: the loosest production recipe QA may approve on this site."""

    model_config = _STRICT

    particles_0_5um_action_max_per_m3: float = Field(
        default=3520.0, gt=0, le=3520.0,
        description="highest grade A action limit for particles >= 0.5 um per m3 (Annex 1 Table 2: 3,520)")
    particles_5um_action_max_per_m3: float = Field(
        default=29.0, gt=0, le=29.0,
        description="highest grade A action limit for particles >= 5 um per m3 (Annex 1 Table 2: 29)")
    fill_tolerance_max_percent: float = Field(
        default=5.0, gt=0, le=20.0, description="widest +/- fill tolerance, % of the fill volume")
    ctg_marker: str = Field(
        default="CTG", min_length=1, max_length=20,
        description="a recipe whose product_code contains this text is cell therapy grade")
    ctg_requires_presterilised_tips: bool = Field(
        default=True, description="cell therapy grade needs a pre-sterilised tip lot (Annex 1 8.71: UV alone does "
                                  "not sterilise)")


class MasterDataSettings(BaseModel):
    """[master_data]: validity periods and the line id used by the checks before a batch starts."""

    model_config = _STRICT

    line_id: str = Field(default="line-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$",
                         description="this line's id in cleaning, clearance and media-fill entries")
    aps_period_days: int = Field(default=183, ge=1, le=3660,
                                 description="days the last passing media fill qualifies the line (Annex 1 9.33: "
                                             "twice a year)")
    aps_seed_date: LooseDate | None = Field(
        default=None, description="last APS qualification before the first media fill in the record; when absent, "
                                  "[site] aps_last_success is used (recorded as a site setting)")
    operator_aps_period_days: int = Field(default=365, ge=1, le=3660,
                                          description="days an operator's passing media-fill participation "
                                                      "keeps them aseptically qualified")
    cleaning_valid_hours: float = Field(default=72.0, gt=0, le=24 * 366,
                                        description="hours a recorded line cleaning stays valid")
    clearance_valid_hours: float = Field(default=12.0, gt=0, le=24 * 31,
                                         description="hours a line clearance stays valid (it is used by one batch)")
    required_procedures: list[str] = Field(
        default_factory=list, description="procedures (SOP ids) every operator must be trained on to start a batch")
    floor: SiteFloor = Field(default_factory=SiteFloor)
