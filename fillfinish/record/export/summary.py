"""Review by exception (EU GMP Chapter 4, 4.20 note): a batch's compliance summary plus every exception in its record.

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


# ---------------------------------------------------------------------------------------------------- signatures
def signatures(entries: Iterable[Entry], invalid: Mapping[int, str] | None = None) -> list[Signature]:
    """Every signature in the record: entries of kind 'signature' and any entry whose data carries a 'signature';
    those whose seq is in `invalid` (seq -> why, from verify) are marked NOT VALID."""
    out: list[Signature] = []
    invalid = invalid or {}
    for entry in entries:
        sig = entry.data.get("signature")
        if isinstance(sig, Mapping):
            out.append(Signature(str(sig.get("name") or entry.actor), str(sig.get("meaning") or "signed"),
                                 entry.ts, entry.seq, entry.kind))
        elif entry.kind == "signature":
            name = entry.data.get("name") or entry.data.get("printed_name") or entry.actor
            out.append(Signature(str(name), str(entry.data.get("meaning") or "signed"), entry.ts, entry.seq, entry.kind,
                                 entry.seq not in invalid, invalid.get(entry.seq, "")))
    return out


# ---------------------------------------------------------------------------------------------------- exceptions
def _hold_items(entries: Sequence[Entry]) -> list[ExceptionItem]:
    """Each stay in Holding/Held as one item: from entering Holding (or Held) to leaving Held, with the people."""
    items: list[ExceptionItem] = []
    start: Entry | None = None
    people: list[str] = []
    seqs: list[int] = []
    last_command: Entry | None = None

    def close(end: Entry | None) -> None:
        """Finish the open hold at `end` (None: still held at the end of the record)."""
        assert start is not None
        finish = end or entries[-1]
        duration = (finish.ts - start.ts).total_seconds()
        reason = str(start.data.get("reason") or "") or "no reason recorded"
        where = f"left Held to {end.data.get('to')}" if end is not None else "still held at the end of the record"
        items.append(ExceptionItem(
            kind="hold", seq=start.seq, ts=start.ts, title=f"hold: {reason}",
            detail=f"from {fmt_time(start.ts)}, {where} after {fmt_duration(duration)}",
            people=tuple(dict.fromkeys(people)), duration_s=duration,
            entries=tuple(seqs + ([end.seq] if end is not None else [])),
        ))

    for entry in entries:
        if entry.kind == "operator":
            last_command = entry
            if start is not None and is_person(entry.actor):
                people.append(entry.actor)
            continue
        if entry.kind != "state":
            continue
        to, frm = entry.data.get("to"), entry.data.get("from")
        if start is None and to in HOLD_STATES:
            start, people, seqs = entry, [], [entry.seq]
            if last_command is not None and last_command.data.get("command") == "Hold":
                people.append(last_command.actor)
                seqs.insert(0, last_command.seq)
            people.append(entry.actor)
        elif start is not None and frm in HOLD_STATES and to not in HOLD_STATES:
            people.append(entry.actor)
            close(entry)
            start = None
    if start is not None:
        close(None)
    return items


def _vial_item(entry: Entry) -> ExceptionItem | None:
    """An out-of-tolerance / rejected / uncertain vial as an exception, else None."""
    d = entry.data
    status = str(d.get("status", ""))
    net, expected, tol = _num(d.get("net_g")), _num(d.get("expected_g")), _num(d.get("tolerance_g"))
    outside = net is not None and expected is not None and tol is not None and abs(net - expected) > tol + 1e-12
    if status == "accepted" and not outside:
        return None
    weight = f"net {_g_as_mg(net)}, expected {_g_as_mg(expected)} +/- {_g_as_mg(tol)}" if net is not None else ""
    reason = str(d.get("reason") or "")
    detail = "; ".join(part for part in (weight, reason) if part)
    return ExceptionItem("out_of_tolerance", entry.seq, entry.ts, f"vial {d.get('vial')} {status or 'not judged'}",
                         detail, entries=(entry.seq,))


def exceptions(entries: Sequence[Entry]) -> list[ExceptionItem]:
    """The exceptions list of a record, ordered by entry seq (holds at the seq where they started)."""
    items: list[ExceptionItem] = []
    alarm_index: dict[int, int] = {}  # seq of alarm entry -> index in items
    open_alarm: dict[str, int] = {}  # source -> seq of its latest uncleared alarm
    unacked: list[int] = []  # alarm seqs not yet acknowledged, oldest first
    for entry in entries:
        d, kind = entry.data, entry.kind
        if kind == "alarm":
            source = str(d.get("source", "?"))
            severity = str(d.get("severity", "?"))
            extra = ", ".join(f"{k} {_text(d[k])}" for k in ("value", "limit") if d.get(k) is not None)
            alarm_index[entry.seq] = len(items)
            open_alarm[source] = entry.seq
            unacked.append(entry.seq)
            items.append(ExceptionItem("interlock" if severity == "interlock" else "alarm", entry.seq, entry.ts,
                                       f"{severity} alarm ({source}): {d.get('message', '')}", extra,
                                       entries=(entry.seq,)))
        elif kind in ("alarm_ack", "alarm_clear"):
            source = str(d.get("source", "?"))
            if kind == "alarm_ack":
                target = next((s for s in unacked if str(entries_by_seq(entries, s).data.get("source")) == source), None)
                if target is not None:
                    unacked.remove(target)
            else:
                target = open_alarm.pop(source, None)
            if target is None or target not in alarm_index:
                continue
            old = items[alarm_index[target]]
            if kind == "alarm_ack":
                note = f"acknowledged by {entry.actor} at {fmt_time(entry.ts)}"
                people = old.people + ((entry.actor,) if entry.actor not in old.people else ())
                duration = old.duration_s
            else:
                note = f"cleared at {fmt_time(entry.ts)}"
                people = old.people
                duration = (entry.ts - old.ts).total_seconds()
            items[alarm_index[target]] = ExceptionItem(
                old.kind, old.seq, old.ts, old.title, "; ".join(p for p in (old.detail, note) if p), people, duration,
                old.entries + (entry.seq,))
        elif kind == "deviation" and d.get("event") in ("registered", "updated"):
            continue  # numbering and 8D work: shown in the deviations section, not as exceptions
        elif kind == "deviation" and d.get("number"):
            items.append(ExceptionItem("deviation", entry.seq, entry.ts, f"deviation {d['number']} closed by "
                                       f"{d.get('closed_by')}", f"classification {d.get('classification')}; impact "
                                       f"{d.get('impact')}", (entry.actor,), entries=(entry.seq,)))
        elif kind == "deviation":
            refs = tuple(sorted({entry.seq} | ({int(d["alarm_entry"])} if _num(d.get("alarm_entry")) else set())))
            where = ", ".join(f"{k} {d[k]}" for k in ("phase", "state") if d.get(k))
            items.append(ExceptionItem("deviation", entry.seq, entry.ts,
                                       f"deviation {d.get('event', 'recorded')}: {d.get('message', d.get('source', ''))}",
                                       where, (entry.actor,) if is_person(entry.actor) else (), entries=refs))
        elif kind == "vial":
            item = _vial_item(entry)
            if item is not None:
                items.append(item)
        elif kind == "uv_cycle":
            dose, target = _num(d.get("dose_mj_cm2")), _num(d.get("target_dose_mj_cm2"))
            if dose is not None and target is not None and dose < target:
                items.append(ExceptionItem("out_of_tolerance", entry.seq, entry.ts,
                                           f"{d.get('step', 'UV')} dose {dose:.1f} below target {target:.1f} mJ/cm2",
                                           entries=(entry.seq,)))
        elif kind == "line_check" and d.get("ok") is False:
            items.append(ExceptionItem("failed_check", entry.seq, entry.ts, f"line check {d.get('check')} failed",
                                       str(d.get("detail", "")), entries=(entry.seq,)))
        elif kind == "operator" and str(d.get("command")) not in ROUTINE_COMMANDS:
            items.append(ExceptionItem("intervention", entry.seq, entry.ts,
                                       f"{d.get('command')} command by {entry.actor}", str(d.get("reason") or ""),
                                       (entry.actor,), entries=(entry.seq,)))
        elif kind == "command_refused":
            items.append(ExceptionItem("command_refused", entry.seq, entry.ts,
                                       f"{d.get('command')} refused in {d.get('state')} (by {entry.actor})",
                                       str(d.get("reason") or ""), (entry.actor,), entries=(entry.seq,)))
        elif kind in ("exception", "safe_state", "interlock"):
            title_key = next((k for k in ("message", "action", "source") if d.get(k)), None)
            title = str(d[title_key]) if title_key else kind
            rest = {k: v for k, v in d.items() if k != title_key}
            detail = ", ".join(f"{k} {_text(v)}" for k, v in sorted(rest.items()) if v not in (None, ""))
            items.append(ExceptionItem(kind, entry.seq, entry.ts, title, detail, entries=(entry.seq,)))
        elif kind == "recovery":
            gap = _num(d.get("gap_s"))
            vial = d.get("uncertain_vial")
            detail = f"vial {vial} in flight, judged uncertain" if vial is not None else "no vial in flight"
            items.append(ExceptionItem("recovery", entry.seq, entry.ts,
                                       f"restart after an unclean shutdown while {d.get('state_before', '?')}",
                                       detail, (entry.actor,) if is_person(entry.actor) else (), gap,
                                       entries=(entry.seq,)))
    items.extend(_hold_items(entries))
    items.sort(key=lambda item: (item.seq, EXCEPTION_KINDS.index(item.kind)))
    return items


def entries_by_seq(entries: Sequence[Entry], seq: int) -> Entry:
    """The entry with `seq` (entries are in seq order 1..n, so this is an index unless the record has gaps)."""
    if 0 < seq <= len(entries) and entries[seq - 1].seq == seq:
        return entries[seq - 1]
    return next(entry for entry in entries if entry.seq == seq)


# ---------------------------------------------------------------------------------------------------- checks
def _integrity_check(snap: RecordSnapshot) -> tuple[Check, bool | None, str]:
    """The hash-chain verification as a check, its ok flag and its one-line text."""
    result = snap.integrity
    if result is None:
        return Check("Record integrity (hash chain)", "n/a", "not verified"), None, "not verified"
    if result.ok:
        text = f"intact ({result.entries_checked} entries verified)"
        if snap.ledger is not None and not snap.ledger.ok and snap.ledger.problem is not None:
            text += f"; ledger NOT INTACT: {snap.ledger.problem.describe('row')}"
            return Check("Record integrity (hash chain)", "fail", text), False, text
        return Check("Record integrity (hash chain)", "pass", text), True, text
    assert result.problem is not None
    text = f"NOT INTACT: {result.problem.describe()}"
    return Check("Record integrity (hash chain)", "fail", text, (result.problem.seq,)), False, text


def _uv_check(name: str, step: str, entries: Sequence[Entry], min_irr: float | None) -> Check | None:
    """A UV step (reference-point cycle or tip station) against its target dose and minimum irradiance."""
    starts = [e for e in entries if e.kind == "uv_start" and e.data.get("step") == step]
    done = [e for e in entries if e.kind == "uv_cycle" and e.data.get("step") == step]
    if not starts and not done:
        return None
    if not done:
        return Check(name, "fail", "started but no completed cycle recorded", tuple(e.seq for e in starts))
    last = done[-1]
    dose, target = _num(last.data.get("dose_mj_cm2")), _num(last.data.get("target_dose_mj_cm2"))
    lowest = _num(last.data.get("min_irradiance_mw_cm2"))
    parts = []
    status = "pass"
    if dose is not None:
        parts.append(f"dose {dose:.1f} mJ/cm2" + (f" (target {target:.0f})" if target is not None else ""))
        if target is not None and dose < target:
            status = "fail"
    if lowest is not None and min_irr is not None and step == "uv_cycle":
        parts.append(f"min irradiance {lowest:.3g} mW/cm2 (validated min {min_irr:.3g})")
        if lowest < min_irr:
            status = "fail"
    if len(done) > 1:
        parts.append(f"{len(done)} cycles recorded")
        status = "attention" if status == "pass" else status
    return Check(name, status, "; ".join(parts) or "completed", tuple(e.seq for e in done))


def _phase_times(entries: Sequence[Entry]) -> dict[tuple[str, str], float]:
    """(phase, event) -> Unix seconds of the last such phase entry: its record timestamp (the controller writes no
    time field in phase entries; an explicit numeric `t` in older hand-written records is still honoured)."""
    out: dict[tuple[str, str], float] = {}
    for entry in entries:
        if entry.kind == "phase":
            t = _num(entry.data.get("t"))
            out[(str(entry.data.get("phase")), str(entry.data.get("event")))] = t if t is not None else entry.ts.timestamp()
    return out


def _step_end(entries: Sequence[Entry], step: str, phase: str) -> float | None:
    """End of a UV step in Unix seconds: its `end` field when numeric, else the time of its `uv_cycle` entry, else the
    end of its phase."""
    for e in reversed(entries):
        if e.kind == "uv_cycle" and e.data.get("step") == step:
            end = _num(e.data.get("end"))
            return end if end is not None else e.ts.timestamp()
    return _phase_times(entries).get((phase, "done"))


def _hold_time_check(entries: Sequence[Entry], recipe: Mapping[str, Any]) -> Check | None:
    """Annex 1 8.18 hold times: UV end to fill start, tips to use, fill duration, against the recipe limits."""
    phases = _phase_times(entries)
    fill_start = phases.get(("fill", "start"))
    if fill_start is None:
        return None
    uv_end = _step_end(entries, "uv_cycle", "uv_cycle")
    tip_end = _step_end(entries, "tip_uv", "tip_sterilisation")
    fill_done = phases.get(("fill", "done"))
    rows = (
        ("UV end to fill start", uv_end, fill_start, "uv_end_to_fill_start_s"),
        ("tips to first use", tip_end, fill_start, "tips_sterilised_to_use_s"),
        ("fill duration", fill_start, fill_done, "fill_duration_max_s"),
    )
    parts, status = [], "pass"
    for label, begin, end, key in rows:
        if begin is None or end is None:
            continue
        took = end - begin
        limit = recipe_number(recipe, "hold_times", key)
        parts.append(f"{label} {fmt_duration(took)}" + (f" (max {fmt_duration(limit)})" if limit is not None else ""))
        if limit is not None and took > limit:
            status = "fail"
    if not parts:
        return None
    return Check("Hold times (Annex 1 8.18)", status, "; ".join(parts))


def _environment_check(entries: Sequence[Entry], recipe: Mapping[str, Any]) -> Check | None:
    """Particle samples against the recipe's alert and action limits, and the environmental alarms."""
    samples = [e for e in entries if e.kind == "measurement" and e.data.get("signal") == "particles"]
    env_alarms = [e for e in entries if e.kind == "alarm"]
    if not samples and not env_alarms:
        return None
    parts = [f"{len(samples)} particle samples"]
    status = "pass"
    for size, key in (("0.5", "per_m3_0_5um"), ("5", "per_m3_5um")):
        values = [v for v in (_num(e.data.get(key)) for e in samples) if v is not None]
        if not values:
            continue
        name = "0_5um" if size == "0.5" else "5um"
        alert = recipe_number(recipe, "environment", f"particles_{name}_alert_per_m3")
        action = recipe_number(recipe, "environment", f"particles_{name}_action_per_m3")
        over_alert = sum(1 for v in values if alert is not None and v >= alert)
        over_action = sum(1 for v in values if action is not None and v >= action)
        text = f">={size} um max {max(values):,.0f}/m3"
        if alert is not None and action is not None:
            text += f" (alert {alert:,.0f}, action {action:,.0f}; {over_alert} at/above alert, {over_action} action)"
        parts.append(text)
        if over_action:
            status = "fail"
        elif over_alert and status == "pass":
            status = "attention"
    min_flow = recipe_number(recipe, "environment", "min_sample_flow_l_min")
    if min_flow is not None:
        low = sum(1 for e in samples if (_num(e.data.get("flow_l_min")) or min_flow) < min_flow)
        if low:
            parts.append(f"{low} samples below the minimum flow {min_flow} L/min")
            status = "fail"
    severities = Counter(str(e.data.get("severity")) for e in env_alarms)
    if env_alarms:
        parts.append("alarms: " + ", ".join(f"{n} {sev}" for sev, n in sorted(severities.items())))
        if any(sev != "alert" for sev in severities):
            status = "fail"
        elif status == "pass":
            status = "attention"
    return Check("Environmental monitoring", status, "; ".join(parts), tuple(e.seq for e in env_alarms))


def _weight_check(entries: Sequence[Entry]) -> Check | None:
    """Check-weighing: how many vials were weighed, how many in tolerance, rejected and uncertain vials."""
    vials = [e for e in entries if e.kind == "vial"]
    if not vials:
        return None
    weighed = [e for e in vials if e.data.get("weighed") or _num(e.data.get("net_g")) is not None]
    bad = [e for e in vials if _vial_item(e) is not None]
    status = "pass" if not bad else "attention"
    detail = f"{len(vials)} vials judged, {len(weighed)} weighed, {len(bad)} rejected/uncertain/out of tolerance"
    return Check("Check-weighing (fill volume)", status, detail, tuple(e.seq for e in bad))


def _reconciliation(entries: Sequence[Entry], planned: int) -> tuple[dict[str, Any], int | None]:
    """The last recorded reconciliation (and its seq), else one computed from the vial entries."""
    recorded = [e for e in entries if e.kind == "reconciliation"]
    if recorded:
        return dict(recorded[-1].data), recorded[-1].seq
    counts = vial_counts(entries)
    rejected = counts["rejected"] + counts["uncertain"]
    return {"planned": planned, "filled": counts["accepted"], "rejected": rejected, "uncertain": counts["uncertain"],
            "samples": 0, "unaccounted": planned - counts["accepted"] - rejected, "computed": True}, None


def vial_counts(entries: Iterable[Entry]) -> dict[str, int]:
    """accepted / rejected / uncertain vials (the last judgement of each vial counts, as in batch/history.py)."""
    last: dict[Any, str] = {}
    for entry in entries:
        if entry.kind == "vial":
            last[entry.data.get("vial")] = str(entry.data.get("status"))
    out = {"accepted": 0, "rejected": 0, "uncertain": 0}
    for status in last.values():
        out[status if status in out else "rejected"] += 1
    return out


def final_state(entries: Iterable[Entry]) -> str:
    """The PackML state the record last reached (Stopped when it has no state entry)."""
    state = "Stopped"
    for entry in entries:
        if entry.kind == "state" and isinstance(entry.data.get("to"), str):
            state = entry.data["to"]
    return state


def review(snap: RecordSnapshot) -> ReviewSummary:
    """The review-by-exception summary of a record snapshot."""
    entries = list(snap.entries)
    recipe = snap.recipe
    integrity, integrity_ok, integrity_text = _integrity_check(snap)
    checks: list[Check] = [integrity]

    line = [e for e in entries if e.kind == "line_check"]
    if line:
        failed = [e for e in line if e.data.get("ok") is not True]
        names = ", ".join(str(e.data.get("check")) for e in failed)
        checks.append(Check("Line clearance checks", "fail" if failed else "pass",
                            f"{len(line) - len(failed)}/{len(line)} passed" + (f"; failed: {names}" if failed else ""),
                            tuple(e.seq for e in failed)))
    min_irr = recipe_number(recipe, "uv", "min_irradiance_mw_cm2")
    for check in (_uv_check("UV decontamination cycle", "uv_cycle", entries, min_irr),
                  _uv_check("Tip station UV", "tip_uv", entries, None)):
        if check is not None:
            checks.append(check)
    tips = [e for e in entries if e.kind == "tip_step"]
    if tips:
        d = tips[-1].data
        checks.append(Check("Tip sterilisation", "pass" if d.get("lot") else "fail",
                            f"{d.get('method', '?')}: lot {d.get('lot', '-')}, expiry {d.get('expiry', '-')}, "
                            f"cycle {d.get('sterilisation_cycle_id', '-')}", (tips[-1].seq,)))
    for maybe in (_hold_time_check(entries, recipe), _environment_check(entries, recipe), _weight_check(entries)):
        if maybe is not None:
            checks.append(maybe)

    rec, rec_seq = _reconciliation(entries, snap.header.planned_vials)
    unaccounted = _num(rec.get("unaccounted"))
    checks.append(Check("Vial reconciliation", "pass" if unaccounted == 0 else "fail",
                        f"planned {rec.get('planned')} = filled {rec.get('filled')} + rejected {rec.get('rejected')} "
                        f"+ samples {rec.get('samples')}; unaccounted {rec.get('unaccounted')}"
                        + (" (computed: no reconciliation entry)" if rec_seq is None else ""),
                        (rec_seq,) if rec_seq else ()))

    items = exceptions(entries)
    quality = _quality_views(snap, entries)
    devs = quality["deviations"]
    still_open = [d for d in devs if d["open"]]
    checks.append(Check("Deviations", "pass" if not devs else ("fail" if still_open else "attention"),
                        f"{len(devs)} deviations, {len(devs) - len(still_open)} closed"
                        + ("; open: " + ", ".join(f"{d['number'] or '(unnumbered)'} {d['state']}" for d in still_open)
                           + "; open deviations block release" if still_open else ""),
                        tuple(s for d in devs for s in d["opened_entries"])))
    checks.extend(quality["checks"])
    faults = [i for i in items if i.kind in ("exception", "safe_state", "interlock", "recovery")]
    checks.append(Check("Faults, safe-state actions, recovery", "pass" if not faults else "fail",
                        f"{len(faults)} recorded", tuple(i.seq for i in faults)))
    interventions = [i for i in items if i.kind in ("intervention", "hold", "command_refused")]
    checks.append(Check("Interventions and holds", "pass" if not interventions else "attention",
                        f"{len(interventions)} recorded", tuple(i.seq for i in interventions)))

    state = final_state(entries)
    checks.append(Check("Final state", "pass" if state == "Complete" else "fail", state))
    disp = next((e for e in reversed(entries) if e.kind == "disposition"), None)
    verdict = str(disp.data.get("verdict")) if disp is not None and disp.data.get("verdict") is not None else None
    suitable = disp.data.get("suitable") if disp is not None and isinstance(disp.data.get("suitable"), bool) else None
    reasons = tuple(r for r in (disp.data.get("reasons") or []) if isinstance(r, Mapping)) if disp is not None else ()
    if disp is not None and quality["viable_reasons"]:  # results read after the proposal: growth makes it not CTG
        from fillfinish.batch.disposition import NOT_SUITABLE

        verdict, suitable = NOT_SUITABLE, False
        reasons = reasons + tuple(quality["viable_reasons"])
    if disp is None:
        checks.append(Check("Disposition", "n/a", "no disposition recorded (the batch has not ended)"))
    else:
        checks.append(Check("Disposition", "pass" if suitable else "fail", verdict or "?", (disp.seq,)))

    return ReviewSummary(
        batch_id=snap.header.batch_id,
        final_state=state,
        verdict=verdict,
        suitable=suitable,
        disposition_seq=disp.seq if disp is not None else None,
        disposition_reasons=tuple(dict(r) for r in reasons),
        reconciliation=rec,
        vial_counts=vial_counts(entries),
        checks=tuple(checks),
        exceptions=tuple(items),
        signatures=tuple(signatures(entries, _invalid_signatures(snap))),
        entries_total=len(entries),
        integrity_ok=integrity_ok,
        integrity_text=integrity_text,
        viable=tuple(quality["viable"]),
        deviations=tuple(devs),
        media_fill=quality["media_fill"],
        retained_samples=quality["retained"],
        qa_decision=quality["decision"],
    )


def _quality_views(snap: RecordSnapshot, entries: list[Entry]) -> dict[str, Any]:
    """Viable results with limits, deviations with 8D state, media-fill outcome, retained samples, QA decision, and
    the checks they make (fillfinish.quality)."""
    from fillfinish.quality import deviations as quality_deviations
    from fillfinish.quality import viable as quality_viable

    checks: list[Check] = []
    status = quality_viable.status(snap.header, entries)
    rows = []
    for s in status.samples:
        d = s.result.data if s.result else {}
        rows.append({"sample_id": s.planned.sample_id, "type": s.planned.sample_type, "location": s.planned.location,
                     "grade": s.planned.grade, "limits": s.limits.text(), "cfu": d.get("cfu"), "level": s.level,
                     "reader": d.get("reader"), "medium_lot": d.get("medium_lot"),
                     "incubation": f"{d.get('incubation_start')} .. {d.get('incubation_end')}" if d else None,
                     "verified_by": s.verified.data.get("verified_by") if s.verified else None,
                     "entry": s.result.seq if s.result else None})
    if status.samples:
        bad = status.unsuitable_reasons()
        alerts = [s for s in status.samples if s.level == "alert"]
        state = "fail" if bad else ("n/a" if status.missing or status.unverified else
                                    ("attention" if alerts else "pass"))
        detail = (f"{len(status.samples) - len(status.missing)}/{len(status.samples)} results entered, "
                  f"{len(status.samples) - len(status.missing) - len(status.unverified)} verified")
        if bad:
            detail += "; " + "; ".join(r["reason"] for r in bad)
        elif alerts:
            detail += f"; {len(alerts)} at alert level"
        if status.missing or status.unverified:
            detail += "; release waits for every planned result, verified"
        checks.append(Check("Viable monitoring (Annex 1 9.24-9.31)", state, detail,
                            tuple(s.result.seq for s in status.samples if s.result is not None)))
    media = next((e for e in entries if e.kind == "mediafill_result"), None)
    media_view = None
    if media is not None:
        media_view = dict(media.data, entry=media.seq)
        checks.append(Check("Media fill outcome (APS)", "pass" if media.data.get("passed") else "fail",
                            f"incubated {media.data.get('incubated')}, growth {media.data.get('growth')}, not "
                            f"incubated {media.data.get('not_incubated')} of {media.data.get('units_filled')} filled; "
                            f"{'passed' if media.data.get('passed') else 'FAILED'}", (media.seq,)))
    elif snap.header.mode == "media_fill":
        checks.append(Check("Media fill outcome (APS)", "n/a", "not recorded yet (after incubation: "
                                                               "`fillfinish mediafill result`)"))
    kept = [e for e in entries if e.kind == "retained_sample"]
    decision = next((e for e in entries if e.kind in ("release", "rejection")), None)
    retained_view = None
    if kept:
        d = kept[-1].data
        retention = decision.data.get("retention_until") if decision is not None else None
        retained_view = {"vials": d.get("vials", []), "count": d.get("count"), "location": d.get("location"),
                         "retention_until": retention, "entry": kept[-1].seq}
        checks.append(Check("Retained samples", "pass" if not d.get("short") else "attention",
                            f"{d.get('count')} vials {d.get('vials')} kept at {d.get('location')}; retention "
                            f"{retention or 'date set at QA release'}", (kept[-1].seq,)))
    decision_view = None
    if decision is not None:
        dd = decision.data
        decision_view = {"decision": dd.get("decision", "released" if decision.kind == "release" else "rejected"),
                         "by": decision.actor, "name": dd.get("name"), "ts": format_ts(decision.ts),
                         "verdict": dd.get("verdict"), "expiry": dd.get("expiry"),
                         "retention_until": dd.get("retention_until"), "reason": dd.get("reason"),
                         "entry": decision.seq}
    return {"checks": checks, "viable": rows, "viable_reasons": status.unsuitable_reasons(),
            "deviations": [d.as_dict() for d in quality_deviations.fold(snap.header, entries)],
            "media_fill": media_view, "retained": retained_view, "decision": decision_view}
