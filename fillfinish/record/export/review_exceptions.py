"""The review's exceptions list and signatures: alarms (with ack/clear), deviations, out-of-tolerance vials, failed
checks, interventions, refused commands, faults, recovery and holds, each with who, when and how long."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fillfinish.record.models import Entry
from fillfinish.record.export.review_model import (
    EXCEPTION_KINDS,
    HOLD_STATES,
    ROUTINE_COMMANDS,
    Check,
    ExceptionItem,
    RecordSnapshot,
    Signature,
    _g_as_mg,
    _num,
    _text,
    fmt_duration,
    fmt_time,
    is_person,
    recipe_number,
)


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
