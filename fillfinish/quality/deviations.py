"""Deviations worked through 8D (21 CFR 211.192, EU GMP Chapter 8): numbered, grouped per event, investigated, and
closed by QA with a signature; the investigator cannot approve its own closure.

The controller (and a viable action excursion) writes `deviation` entries with event 'opened', one per alarm. Here,
in the same batch chain: 'registered' groups the opened entries of one event (alarms within the site's window of the
group's first alarm, e.g. a door opening and the excursions it caused) under a number PREFIX-YEAR-NNNN drawn from
the REG-DEVIATIONS registry; 'updated' records 8D fields with old and new values and who wrote them; 'closed' (QA,
plus an 'approved' signature) closes the whole group. A deviation open in a batch's chain blocks its release.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from fillfinish.people.signatures import sign
from fillfinish.people.users import UserStore
from fillfinish.quality.common import QA_ROLE, QualityRefused, authenticated, settings_of
from fillfinish.record.models import BatchHeader, Entry
from fillfinish.record.registry import append_registry
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_entries import TypedEntry, of_type, read_typed
from fillfinish.record.typed_registry import registry_of_type
from fillfinish.record.vocabulary import DeviationEvent
from fillfinish.record.vocabulary_registries import DeviationNumber

REGISTRY = "deviations"
NUMBER_KIND = "deviation_number"
FIELDS_8D: dict[str, str] = {
    "d1_team": "D1 team",
    "d2_problem": "D2 problem description",
    "d3_containment": "D3 containment",
    "d4_root_cause": "D4 root cause",
    "d5_corrective_action": "D5 corrective action",
    "d6_verification": "D6 verification of the corrective action",
    "d7_preventive_action": "D7 preventive action",
    "d8_closure": "D8 closure and recognition",
}
CLASSIFICATIONS = ("minor", "major", "critical")
INVESTIGATOR_ROLES = ("operator", "supervisor", "qa")
ALL_FIELDS = (*FIELDS_8D, "classification", "impact")
Row = TypedEntry[DeviationEvent]


class FieldChange(BaseModel):
    """One 8D field's change in an 'updated' entry (`changes`: field -> {old, new})."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    old: Any = ""
    new: Any = ""


@dataclass
class Deviation:
    """One deviation: its number (None until registered), the opened entries grouped in it (read typed), 8D state,
    closure."""

    batch_id: str
    number: str | None
    opened: list[Row] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    investigators: set[str] = field(default_factory=set)
    updates: list[Entry] = field(default_factory=list)
    closing: Row | None = None

    @property
    def members(self) -> list[Entry]:
        """The opened entries it groups, as written (their typed data: `opened`)."""
        return [row.entry for row in self.opened]

    @property
    def closed(self) -> Entry | None:
        """The 'closed' entry, None while open."""
        return self.closing.entry if self.closing is not None else None

    @property
    def is_open(self) -> bool:
        """True until QA closed it."""
        return self.closing is None

    @property
    def opened_at(self) -> datetime:
        """Time of its first opened entry."""
        return self.opened[0].ts

    @property
    def alarm_entries(self) -> list[int]:
        """The alarm (or viable result) entries it groups."""
        return [m.data.alarm_entry for m in self.opened if m.data.alarm_entry is not None]

    @property
    def title(self) -> str:
        """The first member's message (and how many more alarms it groups)."""
        first = self.opened[0].data.message or self.opened[0].data.source or "deviation"
        return first + (f" (+{len(self.opened) - 1} related alarms)" if len(self.opened) > 1 else "")

    @property
    def from_viable(self) -> bool:
        """True when it was opened by a viable result (read days later: its own deviation, never grouped)."""
        return _from_viable(self.opened[0].data)

    def missing_fields(self) -> list[str]:
        """8D fields, classification and impact not filled in yet."""
        return [name for name in ALL_FIELDS if not self.fields.get(name, "").strip()]

    def state(self) -> str:
        """'closed', 'open: D4..D8, impact missing' style summary of the 8D state."""
        if self.closing is not None:
            return f"closed by {self.closing.data.closed_by} (entry {self.closing.seq})"
        missing = self.missing_fields()
        if not missing:
            return "open: 8D complete, awaiting QA closure"
        short = [name.split("_", 1)[0].upper() if name.startswith("d") and name[1].isdigit() else name for name in missing]
        return "open: missing " + ", ".join(short)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for exports."""
        return {"number": self.number, "batch_id": self.batch_id, "title": self.title, "open": self.is_open,
                "state": self.state(), "alarm_entries": self.alarm_entries,
                "opened_entries": [m.seq for m in self.opened], "fields": dict(self.fields),
                "classification": self.fields.get("classification"), "impact": self.fields.get("impact"),
                "investigators": sorted(self.investigators),
                "closed_by": self.closing.data.closed_by if self.closing else None,
                "closed_entry": self.closing.seq if self.closing else None}


def _from_viable(d: DeviationEvent) -> bool:
    """True for a deviation entry opened by a viable result (source `viable:SAMPLE`)."""
    return (d.source or "").startswith("viable:")


def _changed_fields(d: DeviationEvent) -> dict[str, str]:
    """An 'updated' entry's 8D fields and their new values (a change that is not {old, new} is left out)."""
    out = {}
    for name, change in (d.changes or {}).items():
        try:
            out[name] = str(FieldChange.model_validate(change).new)
        except ValidationError:
            continue
    return out


def fold(header: BatchHeader, entries: list[Entry]) -> list[Deviation]:
    """The batch's deviations from its entries (read typed; an entry the vocabulary refuses is left out): registered
    groups, then ungrouped opened entries grouped by time."""
    window = settings_of(header).deviation_group_window_s
    rows = of_type(read_typed(e for e in entries if e.kind == "deviation"), DeviationEvent)
    opened = {r.seq: r for r in rows if r.data.event == "opened"}
    legacy_closed = {r.data.alarm_entry for r in rows if r.data.event == "closed" and not r.data.number}
    by_number: dict[str, Deviation] = {}
    grouped: set[int] = set()
    for r in rows:
        d = r.data
        if d.event == "registered" and d.number is not None:
            dev = by_number.setdefault(d.number, Deviation(header.batch_id, d.number))
            for seq in d.members or []:
                if seq in opened and seq not in grouped:
                    dev.opened.append(opened[seq])
                    grouped.add(seq)
        elif d.event == "updated" and d.number in by_number:
            dev = by_number[d.number]
            dev.fields.update(_changed_fields(d))
            dev.investigators.add(r.actor)
            dev.updates.append(r.entry)
        elif d.event == "closed" and d.number in by_number:
            by_number[d.number].closing = r
    out = [d for d in by_number.values() if d.opened]
    pending: list[Deviation] = []
    for seq in sorted(opened):
        r = opened[seq]
        if seq in grouped or r.data.alarm_entry in legacy_closed:
            continue
        home = None if _from_viable(r.data) else next(
            (d for d in out + pending if d.is_open and not d.from_viable
             and abs((r.ts - d.opened_at).total_seconds()) <= window), None)
        if home is None:
            home = Deviation(header.batch_id, None)
            pending.append(home)
        home.opened.append(r)
    for dev in out:
        dev.opened.sort(key=lambda m: m.seq)
    return sorted(out + pending, key=lambda d: d.opened[0].seq)


def open_deviations(store: RecordStore, batch_id: str) -> list[Deviation]:
    """The batch's deviations that are not closed (numbered or not yet)."""
    return [d for d in fold(store.batch(batch_id), store.entries(batch_id)) if d.is_open]


def _next_number(store: RecordStore, prefix: str, year: int) -> str:
    """The next free PREFIX-YEAR-NNNN from the REG-DEVIATIONS registry."""
    stem = f"{prefix}-{year}-"
    used = [row.data.number for row in registry_of_type(store, REGISTRY, DeviationNumber)]
    last = max((int(n[len(stem):]) for n in used if n.startswith(stem) and n[len(stem):].isdigit()), default=0)
    return f"{stem}{last + 1:04d}"


def _claim_number(store: RecordStore, prefix: str, year: int, batch_id: str, opened: list[int]) -> str:
    """Draw the next number and claim it in REG-DEVIATIONS; the registry's first claim of a number owns it.

    Two processes (a QA review and a release, or two lines' batches) may draw the same free number at once: both
    claims are written (the registry is append-only), the later one loses and draws again, so no number is ever
    given to two deviations.
    """
    for _ in range(_CLAIM_ATTEMPTS):
        number = _next_number(store, prefix, year)
        mine = append_registry(store, REGISTRY, NUMBER_KIND, {"number": number, "batch_id": batch_id,
                                                             "opened_entries": opened}, "system")
        first = next(row for row in registry_of_type(store, REGISTRY, DeviationNumber)
                     if row.data.number == number)
        if first.seq == mine.seq:
            return number
    raise QualityRefused(batch_id, "deviation numbering",
                         [f"no free deviation number after {_CLAIM_ATTEMPTS} attempts; try again"])


_CLAIM_ATTEMPTS = 20


def sync(store: RecordStore, batch_id: str) -> list[Deviation]:
    """Number the batch's ungrouped opened deviations (and add late alarms of one event to its open deviation);
    returns the batch's deviations. Writes 'registered' entries (actor system) and registry numbers."""
    header = store.batch(batch_id)
    devs = fold(header, store.entries(batch_id))
    settings = settings_of(header)
    registered = {m.seq for d in devs if d.number for m in d.opened}
    changed = False
    for dev in devs:
        new = [m.seq for m in dev.opened if m.seq not in registered]
        if not new:
            continue
        number = dev.number
        if number is None:
            number = _claim_number(store, settings.deviation_prefix, dev.opened_at.year, batch_id, new)
        store.append(batch_id, "deviation", {"event": "registered", "number": number, "members": new,
                                             "alarm_entries": [m.data.alarm_entry for m in dev.opened
                                                               if m.seq in new]}, "system")
        changed = True
    return fold(header, store.entries(batch_id)) if changed else devs


def locate(store: RecordStore, number: str) -> str:
    """The batch id of deviation `number` (QualityRefused naming the known numbers when there is none)."""
    for row in registry_of_type(store, REGISTRY, DeviationNumber):
        if row.data.number == number:
            return row.data.batch_id
    raise QualityRefused("-", f"deviation {number}", [f"no deviation numbered {number!r}; see `fillfinish deviation list`"])


def get(store: RecordStore, number: str) -> Deviation:
    """Deviation `number` as it stands now."""
    batch_id = locate(store, number)
    dev = next((d for d in sync(store, batch_id) if d.number == number), None)
    if dev is None:
        raise QualityRefused(batch_id, f"deviation {number}", ["its opened entries are not in the batch record"])
    return dev


def update(store: RecordStore, number: str, values: dict[str, str], *, user: str, password: str,
           users: UserStore | None = None) -> Entry:
    """An investigator records 8D fields (old and new values kept); refused on a closed deviation or bad values."""
    dev = get(store, number)
    people = users or UserStore(store)
    account = authenticated(people, user, password, INVESTIGATOR_ROLES, f"update deviation {number}")
    reasons = []
    if dev.closed is not None:
        reasons.append(f"already closed (entry {dev.closed.seq}); a closed deviation is not changed")
    unknown = [k for k in values if k not in ALL_FIELDS]
    if unknown:
        reasons.append(f"unknown fields {', '.join(unknown)}; allowed: {', '.join(ALL_FIELDS)}")
    if "classification" in values and values["classification"] not in CLASSIFICATIONS:
        reasons.append(f"classification {values['classification']!r} is not allowed; allowed: {', '.join(CLASSIFICATIONS)}")
    changes = {k: {"old": dev.fields.get(k, ""), "new": v.strip()} for k, v in values.items()
               if k in ALL_FIELDS and v.strip() != dev.fields.get(k, "")}
    if not changes and not reasons:
        reasons.append("nothing to change (give at least one 8D field, --classification or --impact)")
    if reasons:
        raise QualityRefused(dev.batch_id, f"update of deviation {number}", reasons)
    return store.append(dev.batch_id, "deviation", {"event": "updated", "number": number, "changes": changes,
                                                    "investigator": account.username, "name": account.full_name},
                        account.username)


def close(store: RecordStore, number: str, *, user: str, password: str, comment: str = "",
          users: UserStore | None = None) -> tuple[Entry, Entry]:
    """QA closes a deviation whose 8D is complete, by signature ('approved'); not by one of its investigators."""
    dev = get(store, number)
    people = users or UserStore(store)
    account = authenticated(people, user, password, (QA_ROLE,), f"close deviation {number}")
    reasons = []
    if dev.closed is not None:
        reasons.append(f"already closed (entry {dev.closed.seq})")
    missing = dev.missing_fields()
    if missing:
        reasons.append("8D not complete: missing " + ", ".join(missing))
    if account.username in dev.investigators:
        reasons.append(f"{account.username} investigated this deviation (wrote its 8D fields); the investigator cannot "
                       "approve its own closure: another QA person must close it")
    if reasons:
        raise QualityRefused(dev.batch_id, f"closure of deviation {number}", reasons)
    closed = store.append(dev.batch_id, "deviation", {
        "event": "closed", "number": number, "closed_by": account.username, "name": account.full_name,
        "classification": dev.fields.get("classification"), "impact": dev.fields.get("impact"),
        "root_cause": dev.fields.get("d4_root_cause"), "capa": "; ".join(
            x for x in (dev.fields.get("d5_corrective_action"), dev.fields.get("d7_preventive_action")) if x),
        "alarm_entries": dev.alarm_entries, "comment": comment}, account.username)
    signature = sign(store, dev.batch_id, account.username, "", "approved", f"deviation {number} closed",
                     users=people, authenticated=account)
    return closed, signature
