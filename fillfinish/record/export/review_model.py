"""The review's data: the record snapshot, checks, exception items, signatures, the summary, and their formatting.

Part of the review by exception (fillfinish/record/export/summary.py builds it). Originally:
Review by exception (EU GMP Chapter 4, 4.20 note): a batch's compliance summary plus every exception in its record.

A continuously controlled batch may be reviewed through a compliance summary (did each controlled step meet its
limits?) and the list of exceptions (alarms, deviations, out-of-tolerance values, interventions, holds, faults,
recovery). Both are derived here from the record alone (header + entries + the verify result), so every export (PDF,
JSON, BatchML) shows the same review and anyone can recompute it. Nothing here touches a database except
`load_snapshot`, which reads one batch and verifies its hash chain.
"""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fillfinish.record.chain import format_ts
from fillfinish.record.models import BatchHeader, Entry
from fillfinish.record.verify import BatchResult, LedgerResult

if TYPE_CHECKING:
    from fillfinish.record.store import RecordStore

EXCEPTION_KINDS: tuple[str, ...] = (
    "alarm",
    "deviation",
    "out_of_tolerance",
    "failed_check",
    "intervention",
    "command_refused",
    "hold",
    "interlock",
    "exception",
    "safe_state",
    "recovery",
)
"""Kinds of item in the exceptions list, in the order a reviewer reads them."""

CHECK_STATUSES: tuple[str, ...] = ("pass", "attention", "fail", "n/a")
"""Result of one compliance check: met / met but look at the exceptions / not met / could not be evaluated."""

ROUTINE_COMMANDS = frozenset({"Reset", "Start"})
"""Operator commands that run the batch as planned; every other command (Hold, Unhold, Stop, Abort, ...) is an
intervention in the sense of EU GMP Annex 1 8.17."""

SYSTEM_ACTORS = frozenset({"system", "monitor", "controller"})
"""Actors that are the machine itself, not people."""

HOLD_STATES = frozenset({"Holding", "Held"})


@dataclass(frozen=True)
class RecordSnapshot:
    """One batch record as read for export: header, entries, the verify result and when the export was made."""

    header: BatchHeader
    entries: tuple[Entry, ...]
    integrity: BatchResult | None = None
    ledger: LedgerResult | None = None
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def recipe(self) -> dict[str, Any]:
        """The recipe snapshot of the header parsed as TOML ({} when it is not TOML: limits are then not shown)."""
        return parse_recipe(self.header.recipe_snapshot)


def parse_recipe(text: str) -> dict[str, Any]:
    """The recipe TOML text as a dict, or {} when it does not parse (an export never fails on that)."""
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, TypeError, ValueError):
        return {}


def recipe_number(recipe: Mapping[str, Any], section: str, name: str) -> float | None:
    """recipe[section][name] as a float, or None when it is missing or not a number."""
    value = recipe.get(section, {}).get(name) if isinstance(recipe.get(section), Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def load_snapshot(store: RecordStore, batch_id: str, *, now: datetime | None = None) -> RecordSnapshot:
    """Read batch `batch_id` and verify its hash chain (UnknownBatchError when there is no such batch)."""
    header = store.batch(batch_id)
    entries = tuple(store.entries(batch_id))
    report = store.verify(batch_id)
    return RecordSnapshot(
        header=header,
        entries=entries,
        integrity=report.result(batch_id),
        ledger=report.ledger,
        generated_at=now or datetime.now(UTC),
    )


@dataclass(frozen=True)
class Check:
    """One line of the compliance summary: what was checked, its status (CHECK_STATUSES), the evidence."""

    name: str
    status: str
    detail: str
    entries: tuple[int, ...] = ()


@dataclass(frozen=True)
class ExceptionItem:
    """One exception for the reviewer: kind (EXCEPTION_KINDS), where and when, what, who, how long."""

    kind: str
    seq: int
    ts: datetime
    title: str
    detail: str = ""
    people: tuple[str, ...] = ()
    duration_s: float | None = None
    entries: tuple[int, ...] = ()


@dataclass(frozen=True)
class Signature:
    """An electronic signature as 21 CFR 11.50 requires it shown: printed name, date and time, meaning."""

    name: str
    meaning: str
    ts: datetime
    seq: int
    entry_kind: str
    valid: bool = True
    why: str = ""


@dataclass(frozen=True)
class ReviewSummary:
    """The review-by-exception view of one batch: compliance checks, exceptions, signatures, disposition."""

    batch_id: str
    final_state: str
    verdict: str | None
    suitable: bool | None
    disposition_seq: int | None
    disposition_reasons: tuple[dict[str, Any], ...]
    reconciliation: dict[str, Any]
    vial_counts: dict[str, int]
    checks: tuple[Check, ...]
    exceptions: tuple[ExceptionItem, ...]
    signatures: tuple[Signature, ...]
    entries_total: int
    integrity_ok: bool | None
    integrity_text: str
    viable: tuple[dict[str, Any], ...] = ()
    deviations: tuple[dict[str, Any], ...] = ()
    media_fill: dict[str, Any] | None = None
    retained_samples: dict[str, Any] | None = None
    qa_decision: dict[str, Any] | None = None

    def qa_decision_text(self) -> str:
        """The final state for people: released/rejected, by whom, when, the retention date; or still pending."""
        d = self.qa_decision
        if not d:
            return "pending: release needs the signature of an authorised QA person"
        text = f"{str(d.get('decision', '?')).upper()} by {d.get('name')} ({d.get('by')}) {d.get('ts')}"
        if d.get("retention_until"):
            text += f"; keep the record until {d['retention_until']} (expiry {d.get('expiry')})"
        if d.get("reason"):
            text += f"; reason: {d['reason']}"
        return text

    def exception_counts(self) -> dict[str, int]:
        """How many exceptions of each kind (only kinds that occur), in EXCEPTION_KINDS order."""
        counts = Counter(item.kind for item in self.exceptions)
        return {kind: counts[kind] for kind in EXCEPTION_KINDS if counts[kind]}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (timestamps as record UTC text)."""
        return {
            "batch_id": self.batch_id,
            "final_state": self.final_state,
            "disposition": {
                "verdict": self.verdict,
                "suitable": self.suitable,
                "entry": self.disposition_seq,
                "reasons": [dict(reason) for reason in self.disposition_reasons],
            },
            "reconciliation": dict(self.reconciliation),
            "vials": dict(self.vial_counts),
            "integrity": {"ok": self.integrity_ok, "text": self.integrity_text},
            "entries_total": self.entries_total,
            "checks": [
                {"name": c.name, "status": c.status, "detail": c.detail, "entries": list(c.entries)}
                for c in self.checks
            ],
            "exception_counts": self.exception_counts(),
            "exceptions": [
                {
                    "kind": item.kind,
                    "seq": item.seq,
                    "ts": format_ts(item.ts),
                    "title": item.title,
                    "detail": item.detail,
                    "people": list(item.people),
                    "duration_s": item.duration_s,
                    "entries": list(item.entries),
                }
                for item in self.exceptions
            ],
            "signatures": [
                {"name": s.name, "meaning": s.meaning, "ts": format_ts(s.ts), "entry": s.seq, "entry_kind": s.entry_kind,
                 "valid": s.valid, **({} if s.valid else {"status": "NOT VALID", "why": s.why})}
                for s in self.signatures
            ],
            "viable_monitoring": [dict(v) for v in self.viable],
            "deviations": [dict(d) for d in self.deviations],
            "media_fill": dict(self.media_fill) if self.media_fill else None,
            "retained_samples": dict(self.retained_samples) if self.retained_samples else None,
            "qa_decision": dict(self.qa_decision) if self.qa_decision else None,
        }


# ---------------------------------------------------------------------------------------------------- formatting
def fmt_duration(seconds: float | None) -> str:
    """A duration for people: '42 s', '12 min 05 s', '2 h 03 min'; '-' when unknown."""
    if seconds is None:
        return "-"
    total = int(round(seconds))
    if total < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_time(moment: datetime) -> str:
    """An aware datetime as 'YYYY-MM-DD HH:MM:SS UTC'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> float | None:
    """`value` as a float when it is a real number (not bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text(value: Any) -> str:
    """A data value as short text (containers as compact JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _g_as_mg(value: float | None) -> str:
    """Grams shown as milligrams with one decimal, '-' when unknown."""
    return "-" if value is None else f"{value * 1000:.1f} mg"


def _invalid_signatures(snap: RecordSnapshot) -> dict[int, str]:
    """seq -> why for the signatures verify found not valid (none when the record was not verified)."""
    result = snap.integrity
    if result is None:
        return {}
    why = result.problem.detail if result.problem is not None and result.problem.kind == "signature not valid" else ""
    return {seq: why or "not valid (see record verify)" for seq in getattr(result, "invalid_signatures", ())}


def is_person(actor: str) -> bool:
    """True when `actor` is a person rather than the machine (system, monitor, controller)."""
    return actor not in SYSTEM_ACTORS
