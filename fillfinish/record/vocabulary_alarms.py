"""The record kinds of the abnormal course: alarms, clears, acknowledgements, warnings, exceptions,
deviations and the recovery after an unclean shutdown.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from fillfinish.record.vocabulary_base import EntryData, Number, _f, entry_kind


# ------------------------------------------------------------------------------------------------ alarms, exceptions
@entry_kind("alarm", "An excursion or interlock trip: severity alert | action | fault | interlock.")
class AlarmRaised(EntryData):
    severity: str = _f("alert | action | fault | interlock")
    source: str = _f("what raised it (door, particles_0_5um, hepa_dp, plc_link, ...)")
    message: str = _f("what happened, with the value and limit")
    value: Any = _f("the value seen (unit of the source; a number, text, or a [low, high] range)", None)
    limit: Any = _f("the limit crossed (unit of the source; a number, text, or a [low, high] range)", None)


@entry_kind("alarm_clear", "The condition behind an alarm went back to normal.")
class AlarmClear(EntryData):
    source: str = _f("the alarm's source")


@entry_kind("alarm_ack", "A person acknowledged an alarm.")
class AlarmAck(EntryData):
    alarm_id: int = _f("the alarm's number in the controller's alarm list")
    source: str = _f("the alarm's source")


@entry_kind("warning", "A condition worth attention that does not stop the batch (e.g. lamp hours near the limit).")
class Warning_(EntryData):
    source: str = _f("what it is about")
    message: str = _f("what was seen")


@entry_kind("exception", "An exception to the normal course: a fault, an early end, a monitoring gap.")
class ExceptionEvent(EntryData):
    message: str = _f("what happened")
    phase: Optional[str] = _f("the phase it happened in", None)
    step: Optional[str] = _f("the UV step it happened in", None)
    kind: Optional[str] = _f("a class of exception (monitoring_gap, ...)", None)
    from_: Optional[str] = _f("monitoring_gap: last entry time before the gap (ISO)", None, alias="from")
    seconds: Optional[Number] = _f("monitoring_gap: length of the gap (s)", None)


@entry_kind("deviation", "A deviation opened by an alarm (or an action-level viable result) that touched the batch, "
            "numbered, worked (8D) and closed by QA.")
class DeviationEvent(EntryData):
    event: Literal["opened", "registered", "updated", "closed"] = _f("opened | registered | updated | closed")
    alarm_entry: Optional[int] = _f("opened: seq of the alarm (or viable result) entry", None)
    source: Optional[str] = _f("opened: the alarm's source", None)
    message: Optional[str] = _f("opened: the alarm's message", None)
    phase: Optional[str] = _f("opened: phase at the alarm", None)
    state: Optional[str] = _f("opened: PackML state at the alarm", None)
    number: Optional[str] = _f("registered/updated/closed: the deviation number", None)
    members: Optional[list[int]] = _f("registered: seqs of the opened entries it numbers", None)
    alarm_entries: Optional[list[Optional[int]]] = _f("registered/closed: seqs of the alarm entries", None)
    changes: Optional[dict[str, Any]] = _f("updated: 8D field -> its change (old, new)", None)
    investigator: Optional[str] = _f("updated: the investigator's user id", None)
    name: Optional[str] = _f("updated/closed: printed name of the person", None)
    opened_entry: Optional[int] = _f("closed: seq of the opening entry", None)
    closed_by: Optional[str] = _f("closed: QA user id", None)
    classification: Optional[str] = _f("closed: minor | major | critical", None)
    impact: Optional[str] = _f("closed: impact on the batch", None)
    root_cause: Optional[str] = _f("closed: root cause", None)
    capa: Optional[str] = _f("closed: corrective and preventive action", None)
    comment: Optional[str] = _f("closed: QA's comment", None)


@entry_kind("recovery", "The controller restarted after an unclean shutdown; the gap and the uncertain vial.")
class Recovery(EntryData):
    unclean_shutdown: bool = _f("always true")
    state_before: str = _f("the state the record was in")
    last_seq: int = _f("seq of the last entry before the crash")
    last_time: str = _f("time of that entry (ISO)")
    restart_time: Number = _f("restart time (s, shared clock, Unix epoch)")
    gap_s: Number = _f("time without a controller (s)")
    uncertain_vial: Optional[int] = _f("vial in flight at the crash, if any", None)
    cause: Optional[str] = _f("a controlled stop (e.g. SIGTERM) rather than a crash: its cause", None)
