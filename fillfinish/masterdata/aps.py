"""APS (media fill) validity from the record: the line is qualified by its last passing media fill.

Contract with the quality module (issue 9): it appends to registry `mediafill` entries of kind `mediafill_result`
with data {"batch_id", "line_id", "passed", "operators": [user ids], "result_at": ISO-8601 UTC}. Until the record
holds a first passing media fill of the line, the site setting `[master_data] aps_seed_date` (else the legacy
`[site] aps_last_success`) carries the last qualification date, and the batch's master-data entry says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fillfinish.masterdata.settings import MasterDataSettings
from fillfinish.masterdata.signing import parse_moment
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_registry import registry_of_type
from fillfinish.record.vocabulary_registries import MediaFillResult as MediaFillEntry

REGISTRY = "mediafill"


@dataclass(frozen=True)
class MediaFillResult:
    """One recorded media-fill outcome (written by the quality module)."""

    seq: int
    batch_id: str
    line_id: str
    passed: bool
    operators: tuple[str, ...]
    result_at: dt.datetime


def mediafill_results(store: RecordStore) -> list[MediaFillResult]:
    """Every media-fill result in the record, in write order; entries without the registry's batch, line and time
    (or that the vocabulary refuses) are skipped."""
    out = []
    for row in registry_of_type(store, REGISTRY, MediaFillEntry):
        d = row.data
        if d.batch_id is None or d.line_id is None or d.result_at is None:
            continue
        try:
            out.append(MediaFillResult(row.seq, d.batch_id, d.line_id, d.passed, tuple(d.operators),
                                       parse_moment(d.result_at)))
        except ValueError:
            continue
    return out


@dataclass(frozen=True)
class ApsStatus:
    """The line's qualification: last passing media fill date, where it comes from, until when it is valid."""

    last_pass: dt.date | None
    source: str
    valid_until: dt.date | None

    def as_record(self) -> dict[str, object]:
        """JSON-able form for the batch's master-data entry."""
        return {"last_pass": self.last_pass.isoformat() if self.last_pass else None, "source": self.source,
                "valid_until": self.valid_until.isoformat() if self.valid_until else None}


def line_status(store: RecordStore, settings: MasterDataSettings, legacy_last_success: dt.date | None) -> ApsStatus:
    """The line's APS status: the last passing media fill of the line in the record, else the site setting."""
    period = dt.timedelta(days=settings.aps_period_days)
    passes = [r for r in mediafill_results(store) if r.passed and r.line_id == settings.line_id]
    if passes:
        last = max(passes, key=lambda r: r.result_at)
        day = last.result_at.date()
        return ApsStatus(day, f"media fill {last.batch_id} (mediafill entry {last.seq})", day + period)
    if settings.aps_seed_date is not None:
        return ApsStatus(settings.aps_seed_date, "site setting [master_data] aps_seed_date (no media fill of this "
                                                 "line in the record yet)", settings.aps_seed_date + period)
    if legacy_last_success is not None:
        return ApsStatus(legacy_last_success, "site setting [site] aps_last_success (no media fill of this line in "
                                              "the record yet)", legacy_last_success + period)
    return ApsStatus(None, "no passing media fill of this line in the record and no site setting", None)


def aps_problems(status: ApsStatus, day: dt.date, line_id: str) -> list[str]:
    """Why production may not start on `day` (empty when the line is qualified)."""
    if status.valid_until is None:
        return [f"line {line_id} has no passing media fill (APS): {status.source}"]
    if day > status.valid_until:
        return [f"line {line_id}'s APS lapsed on {status.valid_until} (last passing media fill {status.last_pass}, "
                f"{status.source})"]
    return []
