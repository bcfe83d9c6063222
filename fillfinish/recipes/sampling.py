"""The recipe's sampling plan: viable monitoring (settle plates, active air, glove prints, contact plates) and retained
samples. Both sections are optional; the defaults are a sensible plan for the enclosed grade A filler (docs/recipes.md,
docs/quality.md; EU GMP Annex 1 9.24-9.31)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

Grade = Literal["A", "B", "C", "D"]
SETTLE_MAX_EXPOSURE_S = 4 * 3600.0  # Annex 1 Table 6 note: a settle plate is exposed at most 4 h


class _Section(BaseModel):
    """Strict, closed, immutable recipe table."""

    model_config = _STRICT


class SettlePlate(_Section):
    """Settle plates (90 mm) at one location: how many, and each one's exposure time."""

    location: str = Field(min_length=1, max_length=100, description="where the plate stands")
    grade: Grade = Field(default="A", description="cleanroom grade of the location")
    plates: int = Field(default=1, ge=1, le=50, description="plates at this location per batch")
    exposure_s: float = Field(default=SETTLE_MAX_EXPOSURE_S, gt=0, le=SETTLE_MAX_EXPOSURE_S,
                              description="exposure per plate, seconds (at most 4 h)")


class AirSample(_Section):
    """An active air sample at one location."""

    location: str = Field(min_length=1, max_length=100, description="where the sampler head is")
    grade: Grade = Field(default="A", description="cleanroom grade of the location")
    volume_l: float = Field(default=1000.0, gt=0, le=10_000, description="sampled volume, litres (1 m3 = 1000 L)")


class SamplePoint(_Section):
    """A glove print or a surface contact plate (55 mm) at one location."""

    location: str = Field(min_length=1, max_length=100, description="glove or surface")
    grade: Grade = Field(default="A", description="cleanroom grade of the location")


class ViableMonitoring(_Section):
    """[viable_monitoring]: the microbial samples every batch takes; each result is entered and verified later."""

    settle_plates: list[SettlePlate] = Field(
        default_factory=lambda: [SettlePlate(location="filling needle zone"), SettlePlate(location="vial exit")],
        description="settle plates per location and exposure time")
    active_air: list[AirSample] = Field(default_factory=lambda: [AirSample(location="filling needle zone")],
                                              description="active air samples")
    glove_prints: list[SamplePoint] = Field(
        default_factory=lambda: [SamplePoint(location="glove port left"), SamplePoint(location="glove port right")],
        description="glove prints taken at the end of the session")
    contact_plates: list[SamplePoint] = Field(
        default_factory=lambda: [SamplePoint(location="needle holder"), SamplePoint(location="positioner deck")],
        description="surface contact plates taken at the end of the session")


class RetainedSamples(_Section):
    """[retained_samples]: vials kept as retained samples (EU GMP Annex 19), taken out of the accepted vials."""

    count: int = Field(default=2, ge=0, le=1000, description="retained vials per batch")
    vials: Literal["last", "first", "spread"] = Field(default="last", description="which accepted vials are kept: "
                                                      "the last, the first, or spread evenly over the batch")
    location: str = Field(default="QC retained-sample store, 2-8 C", min_length=1, max_length=200,
                          description="where the retained vials are stored")
