"""Disposition: suitable for cell therapy grade (CTG) or not, with every reason and the record entries behind it.

Suitable only if no environmental excursion (action level) happened before, during or in the post-fill window, every
vial is reconciled (planned = accepted + rejected + samples, uncertain vials counted as rejected), and no interlock or
fault touched the batch. Computed from the record alone, so anyone can recompute it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fillfinish.batch.history import BatchHistory

SUITABLE = "suitable for cell therapy grade"
NOT_SUITABLE = "not suitable for cell therapy grade"


@dataclass
class Disposition:
    verdict: str
    reasons: list[dict[str, Any]] = field(default_factory=list)  # {"reason": str, "entries": [seq, ...]}
    reconciliation: dict[str, int] = field(default_factory=dict)

    @property
    def suitable(self) -> bool:
        return self.verdict == SUITABLE

    def as_record(self) -> dict[str, Any]:
        # a proposal: viable (microbial) results are read days later, and only QA releases (domain brief)
        return {"verdict": self.verdict, "suitable": self.suitable, "reasons": self.reasons,
                "reconciliation": self.reconciliation, "proposal": True,
                "pending": ["viable monitoring results (settle plates, air samples)", "QA review and release"]}


def reconcile(history: BatchHistory, planned: int, samples: int = 0) -> dict[str, int]:
    """planned = filled (accepted, for release) + rejected (incl. uncertain) + samples (retained, taken out of the
    accepted vials)."""
    c = history.counts
    rejected = c["rejected"] + c["uncertain"]
    return {"planned": planned, "filled": c["accepted"] - samples, "rejected": rejected, "uncertain": c["uncertain"],
            "samples": samples, "unaccounted": planned - c["accepted"] - rejected}


def decide(history: BatchHistory, planned: int, final_state: str, samples: int = 0) -> Disposition:
    """The disposition proposal for QA, from the batch's history."""
    reasons: list[dict[str, Any]] = []
    by_source: dict[str, list[int]] = {}
    texts: dict[str, str] = {}
    for seq, alarm in history.alarms:
        if alarm.severity == "alert":
            continue
        key = f"{alarm.severity}:{alarm.source}"
        by_source.setdefault(key, []).append(seq)
        texts.setdefault(key, alarm.message)
    for key, seqs in by_source.items():
        severity = key.split(":", 1)[0]
        kind = "environmental excursion" if severity == "action" else severity
        reasons.append({"reason": f"{kind}: {texts[key]}", "entries": seqs})
    if history.exceptions:
        reasons.append({"reason": "exceptions recorded (safe-state actions, monitoring gaps, device faults)",
                        "entries": [seq for seq, _ in history.exceptions]})
    if history.recovered:
        reasons.append({"reason": "the controller restarted after an unclean shutdown during the batch",
                        "entries": []})
    rec = reconcile(history, planned, samples)
    if rec["unaccounted"] != 0:
        reasons.append({"reason": f"vials not reconciled: planned {rec['planned']} != filled {rec['filled']} + "
                        f"rejected {rec['rejected']} + samples {rec['samples']}", "entries": []})
    if rec["uncertain"]:
        reasons.append({"reason": f"{rec['uncertain']} vial(s) uncertain after an interruption",
                        "entries": [v.seq for v in history.vials.values() if v.status == "uncertain"]})
    if final_state != "Complete":
        reasons.append({"reason": f"batch ended in state {final_state}, not Complete", "entries": []})
    return Disposition(NOT_SUITABLE if reasons else SUITABLE, reasons, rec)
