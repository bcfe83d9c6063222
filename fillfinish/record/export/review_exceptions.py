"""The review's exceptions list and signatures: alarms (with ack/clear), deviations, out-of-tolerance vials, failed
checks, interventions, refused commands, faults, recovery and holds, each with who, when and how long.

Reads the record typed (fillfinish.record.typed_entries): each kind's model, never string keys into the data. An entry
the vocabulary refuses (a tampered record) is listed as an exception itself, so the export still shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fillfinish.record.export.review_model import (
    EXCEPTION_KINDS,
    HOLD_STATES,
    ROUTINE_COMMANDS,
    ExceptionItem,
    Signature,
    _g_as_mg,
    _text,
    fmt_duration,
    fmt_time,
    is_person,
)
from fillfinish.record.models import Entry
from fillfinish.record.typed_entries import TypedEntry, Unreadable, read_typed
from fillfinish.record.vocabulary import (
    AlarmAck,
    AlarmClear,
    AlarmRaised,
    CommandRefusedData,
    DeviationEvent,
    EntryData,
    ExceptionEvent,
    LineCheck,
    OperatorCommand,
    Recovery,
    SafeState,
    StateChange,
    UvCycle,
    VialJudgement,
)
from fillfinish.record.vocabulary import Signature as SignatureData

Row = TypedEntry[EntryData]


# ---------------------------------------------------------------------------------------------------- signatures
def signatures(entries: Iterable[Entry], invalid: Mapping[int, str] | None = None) -> list[Signature]:
    """Every signature in the record: entries of kind 'signature' and any entry whose data carries a 'signature'
    manifestation (run_start, registry entries); those whose seq is in `invalid` (seq -> why, from verify) are
    marked NOT VALID."""
    out: list[Signature] = []
    invalid = invalid or {}
    for row in read_typed(entries):
        sig = getattr(row.data, "signature", None)  # the manifestation dict some kinds carry (11.50)
        if isinstance(sig, Mapping):
            out.append(Signature(str(sig.get("name") or row.actor), str(sig.get("meaning") or "signed"),
                                 row.ts, row.seq, row.kind))
        elif isinstance(row.data, SignatureData):
            out.append(Signature(row.data.name or row.actor, row.data.meaning or "signed", row.ts, row.seq, row.kind,
                                 row.seq not in invalid, invalid.get(row.seq, "")))
    return out


# ---------------------------------------------------------------------------------------------------- holds
def _hold_items(rows: Sequence[Row]) -> list[ExceptionItem]:
    """Each stay in Holding/Held as one item: from entering Holding (or Held) to leaving Held, with the people."""
    items: list[ExceptionItem] = []
    start: TypedEntry[StateChange] | None = None
    people: list[str] = []
    seqs: list[int] = []
    last_command: TypedEntry[OperatorCommand] | None = None
    for row in rows:
        d = row.data
        if isinstance(d, OperatorCommand):
            last_command = TypedEntry(row.entry, d)
            if start is not None and is_person(row.actor):
                people.append(row.actor)
        elif isinstance(d, StateChange) and start is None and d.to in HOLD_STATES:
            start, people, seqs = TypedEntry(row.entry, d), [], [row.seq]
            if last_command is not None and last_command.data.command == "Hold":
                people.append(last_command.actor)
                seqs.insert(0, last_command.seq)
            people.append(row.actor)
        elif isinstance(d, StateChange) and start is not None and d.from_ in HOLD_STATES and d.to not in HOLD_STATES:
            people.append(row.actor)
            items.append(_hold_item(start, TypedEntry(row.entry, d), rows[-1], people, seqs))
            start = None
    if start is not None:
        items.append(_hold_item(start, None, rows[-1], people, seqs))
    return items


def _hold_item(start: TypedEntry[StateChange], end: TypedEntry[StateChange] | None, last: Row, people: list[str],
               seqs: list[int]) -> ExceptionItem:
    """One finished hold (`end` None: still held at the end of the record)."""
    finish = end or last
    duration = (finish.ts - start.ts).total_seconds()
    reason = start.data.reason or "no reason recorded"
    where = f"left Held to {end.data.to}" if end is not None else "still held at the end of the record"
    return ExceptionItem(
        kind="hold", seq=start.seq, ts=start.ts, title=f"hold: {reason}",
        detail=f"from {fmt_time(start.ts)}, {where} after {fmt_duration(duration)}",
        people=tuple(dict.fromkeys(people)), duration_s=duration,
        entries=tuple(seqs + ([end.seq] if end is not None else [])),
    )


# ---------------------------------------------------------------------------------------------------- items by kind
def _vial_item(row: TypedEntry[Any]) -> ExceptionItem | None:
    """An out-of-tolerance / rejected / uncertain vial as an exception, else None."""
    d = row.data
    if not isinstance(d, VialJudgement):
        return None
    net, expected, tol = d.net_g, d.expected_g, d.tolerance_g
    outside = net is not None and expected is not None and tol is not None and abs(net - expected) > tol + 1e-12
    if d.status == "accepted" and not outside:
        return None
    weight = f"net {_g_as_mg(net)}, expected {_g_as_mg(expected)} +/- {_g_as_mg(tol)}" if net is not None else ""
    detail = "; ".join(part for part in (weight, d.reason) if part)
    return ExceptionItem("out_of_tolerance", row.seq, row.ts, f"vial {d.vial} {d.status}", detail,
                         entries=(row.seq,))


def _deviation_item(row: Row, d: DeviationEvent) -> ExceptionItem | None:
    """An opened or closed deviation (numbering and 8D work are shown in the deviations section instead)."""
    if d.event in ("registered", "updated"):
        return None
    if d.number:
        return ExceptionItem("deviation", row.seq, row.ts, f"deviation {d.number} closed by {d.closed_by}",
                             f"classification {d.classification}; impact {d.impact}", (row.actor,),
                             entries=(row.seq,))
    refs = tuple(sorted({row.seq} | ({d.alarm_entry} if d.alarm_entry else set())))
    where = ", ".join(f"{k} {v}" for k, v in (("phase", d.phase), ("state", d.state)) if v)
    return ExceptionItem("deviation", row.seq, row.ts, f"deviation {d.event}: {d.message or d.source or ''}", where,
                         (row.actor,) if is_person(row.actor) else (), entries=refs)


def _fault_item(row: Row, d: ExceptionEvent | SafeState | Unreadable) -> ExceptionItem:
    """An exception, a safe-state action, or an entry the vocabulary refuses: its main text and the other fields."""
    values = d.model_dump(by_alias=True, exclude_none=True)
    if isinstance(d, Unreadable):
        title, kind = f"entry {row.seq} ({row.kind}) does not match the record vocabulary", "exception"
    else:
        title, kind = (d.message if isinstance(d, ExceptionEvent) else d.action), row.kind
    values.pop("message" if isinstance(d, ExceptionEvent) else "action", None)
    detail = ", ".join(f"{k} {_text(v)}" for k, v in sorted(values.items()) if v not in (None, ""))
    return ExceptionItem(kind, row.seq, row.ts, title, detail, entries=(row.seq,))


def _simple_item(row: Row) -> ExceptionItem | None:
    """The kinds that make one item on their own (vials, UV dose, line checks, commands, faults, recovery)."""
    d = row.data
    if isinstance(d, DeviationEvent):
        return _deviation_item(row, d)
    if isinstance(d, VialJudgement):
        return _vial_item(row)
    if isinstance(d, UvCycle) and d.dose_mj_cm2 < d.target_dose_mj_cm2:
        return ExceptionItem("out_of_tolerance", row.seq, row.ts, f"{d.step} dose {d.dose_mj_cm2:.1f} below target "
                             f"{d.target_dose_mj_cm2:.1f} mJ/cm2", entries=(row.seq,))
    if isinstance(d, LineCheck) and not d.ok:
        return ExceptionItem("failed_check", row.seq, row.ts, f"line check {d.check} failed", d.detail,
                             entries=(row.seq,))
    if isinstance(d, OperatorCommand) and d.command not in ROUTINE_COMMANDS:
        return ExceptionItem("intervention", row.seq, row.ts, f"{d.command} command by {row.actor}", d.reason or "",
                             (row.actor,), entries=(row.seq,))
    if isinstance(d, CommandRefusedData):
        return ExceptionItem("command_refused", row.seq, row.ts, f"{d.command} refused in {d.state} (by {row.actor})",
                             d.reason, (row.actor,), entries=(row.seq,))
    if isinstance(d, (ExceptionEvent, SafeState, Unreadable)):
        return _fault_item(row, d)
    if isinstance(d, Recovery):
        vial = d.uncertain_vial
        detail = f"vial {vial} in flight, judged uncertain" if vial is not None else "no vial in flight"
        return ExceptionItem("recovery", row.seq, row.ts, f"restart after an unclean shutdown while {d.state_before}",
                             detail, (row.actor,) if is_person(row.actor) else (), float(d.gap_s),
                             entries=(row.seq,))
    return None


# ---------------------------------------------------------------------------------------------------- alarms
class _Alarms:
    """Alarm items with their acknowledgement and clearing folded in (who acknowledged, how long it lasted)."""

    def __init__(self, items: list[ExceptionItem]) -> None:
        """Append new alarm items to `items`."""
        self.items = items
        self.index: dict[int, int] = {}  # seq of alarm entry -> index in items
        self.open: dict[str, int] = {}  # source -> seq of its latest uncleared alarm
        self.unacked: list[tuple[int, str]] = []  # (alarm seq, source) not yet acknowledged, oldest first

    def raised(self, row: Row, d: AlarmRaised) -> None:
        """A new alarm (an interlock alarm is listed as an interlock)."""
        extra = ", ".join(f"{k} {_text(v)}" for k, v in (("value", d.value), ("limit", d.limit)) if v is not None)
        self.index[row.seq] = len(self.items)
        self.open[d.source] = row.seq
        self.unacked.append((row.seq, d.source))
        self.items.append(ExceptionItem("interlock" if d.severity == "interlock" else "alarm", row.seq, row.ts,
                                        f"{d.severity} alarm ({d.source}): {d.message}", extra, entries=(row.seq,)))

    def acked(self, row: Row, d: AlarmAck) -> None:
        """A person acknowledged the oldest unacknowledged alarm of the source."""
        target = next((pair for pair in self.unacked if pair[1] == d.source), None)
        if target is None:
            return
        self.unacked.remove(target)
        self._note(target[0], row, f"acknowledged by {row.actor} at {fmt_time(row.ts)}", True)

    def cleared(self, row: Row, d: AlarmClear) -> None:
        """The source's latest alarm condition went back to normal."""
        target = self.open.pop(d.source, None)
        if target is not None:
            self._note(target, row, f"cleared at {fmt_time(row.ts)}", False)

    def _note(self, target: int, row: Row, note: str, ack: bool) -> None:
        """Fold an ack (adds the person) or a clear (sets the duration) into the alarm item."""
        if target not in self.index:
            return
        old = self.items[self.index[target]]
        people = old.people + ((row.actor,) if ack and row.actor not in old.people else ())
        duration = old.duration_s if ack else (row.ts - old.ts).total_seconds()
        self.items[self.index[target]] = ExceptionItem(
            old.kind, old.seq, old.ts, old.title, "; ".join(p for p in (old.detail, note) if p), people, duration,
            old.entries + (row.seq,))


def exceptions(entries: Sequence[Entry]) -> list[ExceptionItem]:
    """The exceptions list of a record, ordered by entry seq (holds at the seq where they started)."""
    rows = read_typed(entries)
    items: list[ExceptionItem] = []
    alarms = _Alarms(items)
    for row in rows:
        d = row.data
        if isinstance(d, AlarmRaised):
            alarms.raised(row, d)
        elif isinstance(d, AlarmAck):
            alarms.acked(row, d)
        elif isinstance(d, AlarmClear):
            alarms.cleared(row, d)
        else:
            item = _simple_item(row)
            if item is not None:
                items.append(item)
    if rows:
        items.extend(_hold_items(rows))
    items.sort(key=lambda item: (item.seq, EXCEPTION_KINDS.index(item.kind)))
    return items


def entries_by_seq(entries: Sequence[Entry], seq: int) -> Entry:
    """The entry with `seq` (entries are in seq order 1..n, so this is an index unless the record has gaps)."""
    if 0 < seq <= len(entries) and entries[seq - 1].seq == seq:
        return entries[seq - 1]
    return next(entry for entry in entries if entry.seq == seq)
