"""Viable (microbial) monitoring results (EU GMP Annex 1 9.24-9.31): the batch's planned samples, results entered by a
reader with a signature and verified by a second person, judged against the limits.

Each planned sample (from the recipe snapshot's [viable_monitoring]) gets an id: SP-n settle plate, AA-n active air,
GP-n glove print, CP-n contact plate. A result is a `viable_result` entry plus the reader's signature ('performed');
the verification a `viable_verified` entry plus the verifier's signature ('reviewed'). Results arrive days after the
fill and are ordinary chained entries of the batch. Grade A: any growth is an action excursion (not suitable for cell
therapy grade); grades B-D: the site's alert/action limits (QualitySettings.viable_limits). An action excursion opens
a deviation, so it is investigated before release.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fillfinish.config import QualitySettings
from fillfinish.people.signatures import sign
from fillfinish.people.users import UserStore
from fillfinish.quality.common import REVIEWER_ROLES, QualityRefused, authenticated, settings_of, viable_plan_of
from fillfinish.recipes.sampling import ViableMonitoring
from fillfinish.record.models import BatchHeader, Entry
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_entries import read_typed
from fillfinish.record.vocabulary import typed
from fillfinish.record.vocabulary_registries import ViableResult, ViableVerified

RESULT_KIND = "viable_result"
VERIFIED_KIND = "viable_verified"
READER_ROLES = ("operator", "supervisor", "qa")
SAMPLE_TYPES = {"settle": ("SP", "settle plate", "CFU/4 h"), "air": ("AA", "active air", "CFU/m3"),
                "glove": ("GP", "glove print", "CFU/glove"), "contact": ("CP", "contact plate", "CFU/plate")}


@dataclass(frozen=True)
class PlannedSample:
    """One sample the batch's plan asks for."""

    sample_id: str
    sample_type: str
    location: str
    grade: str
    detail: str = ""


@dataclass(frozen=True)
class Limits:
    """Alert and action limit in CFU (None: none set); grade A has action 0 (any growth)."""

    alert: float | None
    action: float | None
    unit: str

    def level(self, cfu: float) -> str:
        """'action', 'alert' or 'ok' for a count."""
        if self.action is not None and (cfu > self.action if self.action > 0 else cfu > 0):
            return "action"
        if self.alert is not None and cfu > self.alert:
            return "alert"
        return "ok"

    def text(self) -> str:
        """e.g. 'alert 2, action 5 CFU/4 h' or 'no growth'."""
        if self.action == 0:
            return "no growth"
        if self.action is None and self.alert is None:
            return "no limit"
        return f"alert {self.alert if self.alert is not None else '-'}, action {self.action if self.action is not None else '-'} {self.unit}"


@dataclass
class SampleStatus:
    """A planned sample with its latest result and whether that result was verified."""

    planned: PlannedSample
    limits: Limits
    result: Entry | None = None
    verified: Entry | None = None

    @property
    def level(self) -> str | None:
        """'ok', 'alert', 'action' of the latest result (None without one)."""
        return None if self.result is None else result_of(self.result).level


@dataclass
class ViableStatus:
    """Every planned sample of a batch with its state, plus results for samples outside the plan."""

    samples: list[SampleStatus] = field(default_factory=list)

    @property
    def missing(self) -> list[SampleStatus]:
        """Planned samples without a result."""
        return [s for s in self.samples if s.result is None]

    @property
    def unverified(self) -> list[SampleStatus]:
        """Samples whose latest result is not verified by a second person."""
        return [s for s in self.samples if s.result is not None and s.verified is None]

    def blockers(self) -> list[str]:
        """Why release must wait for the viable results."""
        out = []
        if self.missing:
            out.append(f"viable monitoring results missing for {len(self.missing)} of {len(self.samples)} planned "
                       f"samples ({', '.join(s.planned.sample_id for s in self.missing)}); enter them with "
                       "`fillfinish viable add`")
        if self.unverified:
            out.append("viable monitoring results not verified by a second person ("
                       + ", ".join(s.planned.sample_id for s in self.unverified) + "); `fillfinish viable verify`")
        return out

    def unsuitable_reasons(self) -> list[dict[str, Any]]:
        """Reasons the results make the batch not suitable for cell therapy grade (grade A growth, action limits)."""
        out = []
        for s in self.samples:
            if s.result is None or s.level != "action":
                continue
            d = result_of(s.result)
            what = "growth in grade A" if s.planned.grade == "A" else f"action limit exceeded in grade {s.planned.grade}"
            out.append({"reason": f"viable monitoring: {what}: {s.planned.sample_id} {s.planned.location} "
                                  f"{d.cfu} CFU ({s.limits.text()})", "entries": [s.result.seq]})
        return out


def result_of(entry: Entry) -> ViableResult:
    """A viable_result entry's typed data (the vocabulary's model)."""
    data = typed(entry)
    assert isinstance(data, ViableResult), f"entry {entry.seq} is a {entry.kind}, not a {RESULT_KIND}"
    return data


def planned_samples(plan: ViableMonitoring) -> list[PlannedSample]:
    """The sample ids of a plan, in plan order."""
    out: list[PlannedSample] = []
    n = 0
    for spot in plan.settle_plates:
        for i in range(spot.plates):
            n += 1
            out.append(PlannedSample(f"SP-{n}", "settle", spot.location, spot.grade,
                                     f"plate {i + 1} of {spot.plates}, exposure {spot.exposure_s / 3600:g} h"))
    for i, air in enumerate(plan.active_air, 1):
        out.append(PlannedSample(f"AA-{i}", "air", air.location, air.grade, f"{air.volume_l:g} L"))
    for i, point in enumerate(plan.glove_prints, 1):
        out.append(PlannedSample(f"GP-{i}", "glove", point.location, point.grade, "end of session"))
    for i, point in enumerate(plan.contact_plates, 1):
        out.append(PlannedSample(f"CP-{i}", "contact", point.location, point.grade, "end of session"))
    return out


def limits_for(settings: QualitySettings, grade: str, sample_type: str) -> Limits:
    """The limits of a sample type in a grade: grade A no growth; others from the site settings."""
    unit = SAMPLE_TYPES[sample_type][2]
    if grade == "A":
        return Limits(None, 0.0, unit)
    grade_limits = settings.viable_limits.get(grade)  # type: ignore[call-overload]
    if grade_limits is None:
        return Limits(None, None, unit)
    limit = getattr(grade_limits, sample_type)
    return Limits(limit.alert, limit.action, unit)


def status(header: BatchHeader, entries: list[Entry]) -> ViableStatus:
    """Fold the batch's viable entries over its plan: latest result and its verification per sample."""
    settings = settings_of(header)
    st = ViableStatus([SampleStatus(p, limits_for(settings, p.grade, p.sample_type))
                       for p in planned_samples(viable_plan_of(header))])
    by_id = {s.planned.sample_id: s for s in st.samples}
    for row in read_typed(entries):
        d = row.data
        sample = by_id.get(d.sample_id) if isinstance(d, (ViableResult, ViableVerified)) else None
        if sample is None:
            continue
        if isinstance(d, ViableResult):
            sample.result, sample.verified = row.entry, None
        elif isinstance(d, ViableVerified) and sample.result is not None and d.result_entry == sample.result.seq:
            sample.verified = row.entry
    return st


def _moment(text: str, name: str, batch_id: str) -> dt.datetime:
    """An ISO-8601 time (naive = UTC) or a refusal naming the field."""
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise QualityRefused(batch_id, "viable result", [f"{name} {text!r} is not a time; allowed: ISO-8601, e.g. "
                                                           "2026-11-30T09:00 (UTC) or 2026-11-30T10:00+01:00"]) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def add_result(store: RecordStore, batch_id: str, sample_id: str, *, cfu: int, incubation_start: str,
               incubation_end: str, medium_lot: str, user: str, password: str, organism: str = "",
               correction: str = "", users: UserStore | None = None) -> tuple[Entry, Entry]:
    """The reader enters one planned sample's result and signs it ('performed'); returns (result, signature).

    An action excursion also opens a deviation. A second result for the same sample needs `correction` (why); the
    latest result counts and must be verified again."""
    header = store.batch(batch_id)
    people = users or UserStore(store)
    account = authenticated(people, user, password, READER_ROLES, f"enter viable result {batch_id}/{sample_id}")
    st = status(header, store.entries(batch_id))
    sample = next((s for s in st.samples if s.planned.sample_id == sample_id), None)
    reasons = []
    if sample is None:
        reasons.append(f"no planned sample {sample_id!r}; planned: " + ", ".join(s.planned.sample_id for s in st.samples))
    if isinstance(cfu, bool) or not isinstance(cfu, int) or cfu < 0:
        reasons.append(f"--cfu {cfu!r} must be a whole number >= 0")
    start = _moment(incubation_start, "--incubation-start", batch_id)
    end = _moment(incubation_end, "--incubation-end", batch_id)
    if end <= start:
        reasons.append(f"incubation end {end.isoformat()} is not after its start {start.isoformat()}")
    if start < header.created_at:
        reasons.append(f"incubation start {start.isoformat()} is before the batch began ({header.created_at.isoformat()})")
    if not medium_lot.strip():
        reasons.append("--medium-lot must name the lot of the culture medium")
    if sample is not None and sample.result is not None and not correction.strip():
        reasons.append(f"{sample_id} already has a result (entry {sample.result.seq}); give a correction reason to "
                       "supersede it")
    if reasons:
        raise QualityRefused(batch_id, "viable result", reasons)
    assert sample is not None
    level = sample.limits.level(cfu)
    data = {"sample_id": sample_id, "sample_type": sample.planned.sample_type, "location": sample.planned.location,
            "grade": sample.planned.grade, "cfu": cfu, "unit": sample.limits.unit,
            "incubation_start": start.astimezone(dt.UTC).isoformat(), "incubation_end": end.astimezone(dt.UTC).isoformat(),
            "medium_lot": medium_lot.strip(), "reader": account.username, "reader_name": account.full_name,
            "organism": organism.strip(), "limits": {"alert": sample.limits.alert, "action": sample.limits.action,
                                                     "text": sample.limits.text()},
            "level": level}
    if sample.result is not None:
        data.update(supersedes=sample.result.seq, correction=correction.strip())
    result = store.append(batch_id, RESULT_KIND, data, account.username)
    signature = sign(store, batch_id, account.username, "", "performed", f"viable result {sample_id}", users=people,
                     authenticated=account)
    if level == "action":
        what = "growth in grade A" if sample.planned.grade == "A" else f"action limit exceeded (grade {sample.planned.grade})"
        store.append(batch_id, "deviation", {"event": "opened", "alarm_entry": result.seq, "source": f"viable:{sample_id}",
                                             "message": f"viable monitoring: {what}: {sample_id} {sample.planned.location} "
                                                        f"{cfu} CFU ({sample.limits.text()})"}, "system")
    return result, signature


def verify_result(store: RecordStore, batch_id: str, sample_id: str, *, user: str, password: str,
                  users: UserStore | None = None) -> tuple[Entry, Entry]:
    """A second person (QA or supervisor, not the reader) verifies the latest result of a sample and signs it."""
    header = store.batch(batch_id)
    people = users or UserStore(store)
    account = authenticated(people, user, password, REVIEWER_ROLES, f"verify viable result {batch_id}/{sample_id}")
    st = status(header, store.entries(batch_id))
    sample = next((s for s in st.samples if s.planned.sample_id == sample_id), None)
    if sample is None or sample.result is None:
        entered = ", ".join(s.planned.sample_id for s in st.samples if s.result is not None) or "none"
        raise QualityRefused(batch_id, "viable verification", [f"no result entered for {sample_id!r}; entered: {entered}"])
    if sample.verified is not None:
        raise QualityRefused(batch_id, "viable verification", [f"{sample_id} already verified (entry {sample.verified.seq})"])
    if result_of(sample.result).reader == account.username:
        raise QualityRefused(batch_id, "viable verification", [f"{account.username} entered this result; a second "
                                                               "person must verify it (Annex 11 s.6)"])
    entry = store.append(batch_id, VERIFIED_KIND, {"sample_id": sample_id, "result_entry": sample.result.seq,
                                                   "cfu": result_of(sample.result).cfu,
                                                   "verified_by": account.username, "name": account.full_name},
                         account.username)
    signature = sign(store, batch_id, account.username, "", "reviewed", f"viable result {sample_id} verified",
                     users=people, authenticated=account)
    return entry, signature
