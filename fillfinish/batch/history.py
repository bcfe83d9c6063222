"""A batch's state as told by its record: what a restarted controller, the disposition and `record show` rely on.

Nothing here is kept anywhere else: the record is the only truth, so after a crash the controller rebuilds from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable



@dataclass
class VialOutcome:
    vial: int
    status: str  # accepted | rejected | uncertain
    reason: str = ""
    seq: int = 0


@dataclass
class BatchHistory:
    """Everything the controller needs to know about a batch, derived from its entries (times are the entries'
    timestamps, which the controller's shared clock writes)."""

    state: str = "Stopped"
    phases_done: list[str] = field(default_factory=list)
    phase: str | None = None
    vials: dict[int, VialOutcome] = field(default_factory=dict)
    uv_end: float | None = None
    tips_done: float | None = None
    fill_start: float | None = None
    alarms: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (seq, data)
    exceptions: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    open_dispense: tuple[int, dict[str, Any]] | None = None  # intent seq + data of a dispense without outcome
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
        return max(self.vials, default=0) + 1

    def in_flight(self) -> tuple[int, str] | None:
        """The vial whose fate the record cannot tell, with why (None if there is none)."""
        if self.open_dispense is not None:
            vial = int(self.open_dispense[1].get("vial", 0))
            if vial not in self.vials:
                return vial, f"dispense started (entry {self.open_dispense[0]}) with no outcome recorded"
        if self.dispensed_unweighed is not None and self.dispensed_unweighed not in self.vials:
            return self.dispensed_unweighed, "dispensed but its check and acceptance were not recorded"
        return None

    @classmethod
    def from_entries(cls, entries: Iterable[Any]) -> "BatchHistory":
        h = cls()
        for e in entries:
            d: dict[str, Any] = e.data
            h.last_seq = e.seq
            k = e.kind
            if k == "state":
                h.state = d["to"]
            elif k == "phase":
                if d.get("event") == "start":
                    h.phase = d["phase"]
                    if d["phase"] == "fill" and h.fill_start is None:
                        h.fill_start = e.ts.timestamp()
                elif d.get("event") == "done":
                    if d["phase"] not in h.phases_done:
                        h.phases_done.append(d["phase"])
                    if d["phase"] == "uv_cycle":
                        h.uv_end = e.ts.timestamp()
                    if d["phase"] == "tip_sterilisation":
                        h.tips_done = e.ts.timestamp()
                elif d.get("event") == "repeat":  # a hold time ran out: this phase and all after it are redone
                    if d["phase"] in h.phases_done:
                        h.phases_done = h.phases_done[: h.phases_done.index(d["phase"])]
                    h.phase = d["phase"]
                    if d["phase"] == "uv_cycle":
                        h.uv_end = h.tips_done = None
                    elif d["phase"] == "tip_sterilisation":
                        h.tips_done = None
            elif k == "uv_cycle" and d.get("step") == "uv_cycle":
                h.uv_dose = d.get("dose_mj_cm2", 0.0)
            elif k == "intent" and d.get("action") == "dispense":
                h.open_dispense = (e.seq, d)
            elif k == "outcome" and d.get("action") == "dispense":
                if h.open_dispense and d.get("intent") == h.open_dispense[0]:
                    vial = int(h.open_dispense[1].get("vial", 0))
                    h.open_dispense = None
                    if vial:  # whatever the outcome, liquid may be in it: it must be judged, never filled again
                        h.dispensed_unweighed = vial
            elif k == "vial":
                h.vials[int(d["vial"])] = VialOutcome(int(d["vial"]), d["status"], d.get("reason", ""), e.seq)
                if h.dispensed_unweighed == int(d["vial"]):
                    h.dispensed_unweighed = None
                if h.open_dispense and int(h.open_dispense[1].get("vial", 0)) == int(d["vial"]):
                    h.open_dispense = None
            elif k == "alarm":
                h.alarms.append((e.seq, d))
            elif k in ("exception", "safe_state"):
                h.exceptions.append((e.seq, d))
            elif k == "run_start":
                h.tip_lot = d.get("tip_lot")
            elif k == "recovery":
                h.recovered += 1
            elif k == "disposition":
                h.disposition = d
        return h
