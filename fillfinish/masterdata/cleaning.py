"""Cleaning and line clearance (EU GMP 5.35, Annex 1 4.x, 21 CFR 211.67): a signed cleaning entry per line, valid
for a site period, and a line clearance before each batch confirmed by a second person (not the batch's operator).

Registry `cleaning`: `cleaning_recorded` {line_id, procedure, agent_lot, cleaned_at, signature}.
Registry `clearance`: `clearance_confirmed` {line_id, checks, signature} and `clearance_used` {line_id,
clearance_entry, lot, operator}: a clearance is used by the one batch started on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fillfinish.masterdata import MasterDataError
from fillfinish.masterdata.settings import MasterDataSettings
from fillfinish.masterdata.signing import as_utc, authenticate, iso, parse_moment, signature
from fillfinish.record.registry import append_registry
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_entries import of_type
from fillfinish.record.typed_registry import read_registry, registry_of_type, signer
from fillfinish.record.vocabulary_registries import CleaningRecorded, ClearanceConfirmed, ClearanceUsed

CLEANING = "cleaning"
CLEARANCE = "clearance"
CLEANER_ROLES = ("operator", "supervisor", "qa")
CLEARANCE_ROLES = ("operator", "supervisor", "qa")
CLEARANCE_CHECKS = ("previous product, labels and documents removed", "line and enclosure visibly clean",
                    "no material of another lot on the line")


@dataclass(frozen=True)
class Cleaning:
    """One recorded cleaning of a line."""

    seq: int
    line_id: str
    procedure: str
    agent_lot: str
    cleaned_at: dt.datetime
    by: str

    def line(self) -> str:
        """One line for `cleaning list`."""
        return f"{self.line_id:<10} {iso(self.cleaned_at)}  {self.procedure:<16} agent lot {self.agent_lot:<14} " \
               f"by {self.by} (entry {self.seq})"


@dataclass(frozen=True)
class Clearance:
    """One line clearance and whether a batch has used it."""

    seq: int
    line_id: str
    at: dt.datetime
    by: str
    used: bool


def cleanings(store: RecordStore, line_id: str | None = None) -> list[Cleaning]:
    """The cleaning entries (of one line), in write order."""
    out = []
    for row in registry_of_type(store, CLEANING, CleaningRecorded):
        d = row.data
        if line_id is None or d.line_id == line_id:
            out.append(Cleaning(row.seq, d.line_id, d.procedure, d.agent_lot, parse_moment(d.cleaned_at),
                                signer(d.signature).user_id))
    return out


def record_cleaning(store: RecordStore, line_id: str, procedure: str, agent_lot: str, user: str, password: str,
                    cleaned_at: float | dt.datetime) -> Cleaning:
    """The person who cleaned the line records it (procedure, cleaning agent lot) with their signature."""
    what = f"record cleaning of line {line_id}"
    for name, value in (("--procedure", procedure), ("--agent-lot", agent_lot)):
        if not value.strip():
            raise MasterDataError(f"{what}: {name} is required")
    account = authenticate(store, user, password, CLEANER_ROLES, what)
    append_registry(store, CLEANING, "cleaning_recorded", {
        "line_id": line_id, "procedure": procedure, "agent_lot": agent_lot, "cleaned_at": iso(cleaned_at),
        "signature": signature(account, "performed", f"cleaning {procedure}")}, account.username)
    return cleanings(store, line_id)[-1]


def clearances(store: RecordStore, line_id: str) -> list[Clearance]:
    """The line's clearances, in write order, each marked used once a batch started on it."""
    rows = read_registry(store, CLEARANCE)
    used = {row.data.clearance_entry for row in of_type(rows, ClearanceUsed)}
    return [Clearance(row.seq, line_id, row.ts, signer(row.data.signature).user_id, row.seq in used)
            for row in of_type(rows, ClearanceConfirmed) if row.data.line_id == line_id]


def confirm_clearance(store: RecordStore, line_id: str, user: str, password: str, reason: str = "") -> Clearance:
    """A second person confirms the line clearance before the next batch (signed)."""
    account = authenticate(store, user, password, CLEARANCE_ROLES, f"confirm line clearance of {line_id}")
    append_registry(store, CLEARANCE, "clearance_confirmed", {
        "line_id": line_id, "checks": list(CLEARANCE_CHECKS),
        "signature": signature(account, "verified", reason or "line clearance before the next batch")},
        account.username)
    return clearances(store, line_id)[-1]


def cleaning_problems(store: RecordStore, settings: MasterDataSettings, now: float | dt.datetime
                      ) -> tuple[list[str], Cleaning | None]:
    """Why the line is not clean enough to start at `now` (empty when a valid cleaning exists) and that cleaning."""
    line = settings.line_id
    found = cleanings(store, line)
    if not found:
        return [f"no cleaning of line {line} is recorded (`fillfinish cleaning record`)"], None
    last = max(found, key=lambda c: c.cleaned_at)
    age_h = (as_utc(now) - last.cleaned_at).total_seconds() / 3600.0
    if age_h > settings.cleaning_valid_hours:
        return [f"the last cleaning of line {line} ({iso(last.cleaned_at)}) is older than "
                f"{settings.cleaning_valid_hours:g} h"], last
    return [], last


def clearance_problems(store: RecordStore, settings: MasterDataSettings, operator: str, now: float | dt.datetime
                       ) -> tuple[list[str], Clearance | None]:
    """Why the line is not cleared for `operator`'s batch at `now` (empty when it is) and the clearance to use."""
    line = settings.line_id
    found = clearances(store, line)
    if not found or found[-1].used:
        return [f"no line clearance of line {line} since the last batch (`fillfinish clearance confirm`, by a "
                "second person)"], None
    last = found[-1]
    if last.by == operator:
        return [f"line clearance (entry {last.seq}) was confirmed by the operator {operator} themself; a second "
                "person must confirm it"], None
    age_h = (as_utc(now) - last.at).total_seconds() / 3600.0
    if age_h > settings.clearance_valid_hours:
        return [f"the line clearance of line {line} (entry {last.seq}) is older than "
                f"{settings.clearance_valid_hours:g} h"], None
    return [], last


def use_clearance(store: RecordStore, clearance: Clearance, lot: str, operator: str) -> None:
    """Mark the clearance as used by the batch about to start (the next batch needs a new one)."""
    append_registry(store, CLEARANCE, "clearance_used", {"line_id": clearance.line_id,
                                                         "clearance_entry": clearance.seq, "lot": lot,
                                                         "operator": operator}, "system")
