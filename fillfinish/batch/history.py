"""A batch's state as told by its record: what a restarted controller, the disposition and `record show` rely on.

Nothing here is kept anywhere else: the record is the only truth, so after a crash the controller rebuilds from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from fillfinish.record.models import Entry
from fillfinish.record.vocabulary import (
    AlarmRaised,
    DispositionData,
    EntryData,
    ExceptionEvent,
    Intent,
    Outcome,
    PhaseEvent,
    Recovery,
    RunStart,
    SafeState,
    StateChange,
    UvCycle,
    VialJudgement,
    typed,
)

@dataclass
class VialOutcome:
    """A vial's last judgement in the record."""

    vial: int
    status: str  # accepted | rejected | uncertain
    reason: str = ""
    seq: int = 0


class VialBook(dict[int, VialOutcome]):
    """The vials judged so far, by number, keeping the highest number as they are added (the fill asks for the
    next vial once a vial: a max() over every key each time grew with the batch)."""

    highest: int = 0

    def __setitem__(self, vial: int, outcome: VialOutcome) -> None:
        """Judge (or judge again) `vial`."""
        super().__setitem__(vial, outcome)
        if vial > self.highest:
            self.highest = vial


@dataclass
class BatchHistory:
    """Everything the controller needs to know about a batch, derived from its entries (times are the entries'
    timestamps, which the controller's shared clock writes)."""

    state: str = "Stopped"
    phases_done: list[str] = field(default_factory=list)
    phase: str | None = None
    vials: VialBook = field(default_factory=VialBook)
    uv_end: float | None = None
    tips_done: float | None = None
    fill_start: float | None = None
    alarms: list[tuple[int, AlarmRaised]] = field(default_factory=list)  # (seq, alarm)
    exceptions: list[tuple[int, ExceptionEvent | SafeState]] = field(default_factory=list)
    open_dispense: tuple[int, Intent] | None = None  # intent seq + intent of a dispense without outcome
    dispensed_unweighed: int | None = None  # vial dispensed (outcome ok) but not yet judged
    uv_dose: float = 0.0
    last_seq: int = 0
    recovered: int = 0
    tip_lot: dict[str, Any] | None = None
    disposition: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        """The batch ended (Complete, Stopped or Aborted) and its disposition is recorded."""
        return self.disposition is not None

    @property
    def counts(self) -> dict[str, int]:
        out = {"accepted": 0, "rejected": 0, "uncertain": 0}
        for v in self.vials.values():
            out[v.status] += 1
        return out

    def next_vial(self) -> int:
        """The vial after the highest one judged."""
        return self.vials.highest + 1

    def in_flight(self) -> tuple[int, str] | None:
        """The vial whose fate the record cannot tell, with why (None if there is none)."""
        if self.open_dispense is not None:
            vial = self.open_dispense[1].vial or 0
            if vial not in self.vials:
                return vial, f"dispense started (entry {self.open_dispense[0]}) with no outcome recorded"
        if self.dispensed_unweighed is not None and self.dispensed_unweighed not in self.vials:
            return self.dispensed_unweighed, "dispensed but its check and acceptance were not recorded"
        return None

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> "BatchHistory":
        """Fold the batch's entries, read typed (fillfinish.record.vocabulary), into its history."""
        h = cls()
        for e in entries:
            h.last_seq = e.seq
            h._apply(e, typed(e))
        return h

    def _apply(self, e: Entry, d: EntryData) -> None:
        """One entry's effect on the history."""
        if isinstance(d, StateChange):
            self.state = d.to
        elif isinstance(d, PhaseEvent):
            self._phase(e, d)
        elif isinstance(d, UvCycle) and d.step == "uv_cycle":
            self.uv_dose = float(d.dose_mj_cm2)
        elif isinstance(d, Intent) and d.action == "dispense":
            self.open_dispense = (e.seq, d)
        elif isinstance(d, Outcome) and d.action == "dispense":
            if self.open_dispense and d.intent == self.open_dispense[0]:
                vial = self.open_dispense[1].vial or 0
                self.open_dispense = None
                if vial:  # whatever the outcome, liquid may be in it: it must be judged, never filled again
                    self.dispensed_unweighed = vial
        elif isinstance(d, VialJudgement):
            self.vials[d.vial] = VialOutcome(d.vial, d.status, d.reason, e.seq)
            if self.dispensed_unweighed == d.vial:
                self.dispensed_unweighed = None
            if self.open_dispense and (self.open_dispense[1].vial or 0) == d.vial:
                self.open_dispense = None
        elif isinstance(d, AlarmRaised):
            self.alarms.append((e.seq, d))
        elif isinstance(d, (ExceptionEvent, SafeState)):
            self.exceptions.append((e.seq, d))
        elif isinstance(d, RunStart):
            self.tip_lot = d.tip_lot
        elif isinstance(d, Recovery):
            self.recovered += 1
        elif isinstance(d, DispositionData):
            self.disposition = d.model_dump(by_alias=True)

    def _phase(self, e: Entry, d: PhaseEvent) -> None:
        """A phase started, finished, or is repeated (a hold time ran out: it and all after it are redone)."""
        if d.event == "start":
            self.phase = d.phase
            if d.phase == "fill" and self.fill_start is None:
                self.fill_start = e.ts.timestamp()
        elif d.event == "done":
            if d.phase not in self.phases_done:
                self.phases_done.append(d.phase)
            if d.phase == "uv_cycle":
                self.uv_end = e.ts.timestamp()
            if d.phase == "tip_sterilisation":
                self.tips_done = e.ts.timestamp()
        else:
            if d.phase in self.phases_done:
                self.phases_done = self.phases_done[: self.phases_done.index(d.phase)]
            self.phase = d.phase
            if d.phase == "uv_cycle":
                self.uv_end = self.tips_done = None
            elif d.phase == "tip_sterilisation":
                self.tips_done = None
