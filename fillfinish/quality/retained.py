"""Retained samples (EU GMP Annex 19): which accepted vials the recipe's plan keeps, and the record entry that says
so. The controller writes the entry at the end of the fill; the vials then count as 'samples' in the reconciliation,
and the QA decision adds their retention date (docs/quality.md)."""

from __future__ import annotations

from typing import Any

from fillfinish.recipes.sampling import RetainedSamples

RETAINED_KIND = "retained_sample"


def pick(accepted: list[int], plan: RetainedSamples) -> list[int]:
    """The accepted vial numbers kept as retained samples: the last, the first, or spread evenly (at most all)."""
    vials = sorted(accepted)
    n = min(plan.count, len(vials))
    if n == 0:
        return []
    if plan.vials == "first":
        return vials[:n]
    if plan.vials == "last":
        return vials[-n:]
    step = len(vials) / n
    return sorted({vials[min(len(vials) - 1, int(i * step + step / 2))] for i in range(n)})


def record(accepted: list[int], plan: RetainedSamples) -> dict[str, Any]:
    """The data of the `retained_sample` entry: vials, count, how chosen, where kept; the date comes at QA release."""
    vials = pick(accepted, plan)
    short = plan.count - len(vials)
    return {"vials": vials, "count": len(vials), "planned": plan.count, "rule": plan.vials,
            "location": plan.location, "retention": "until the record's retention date, set at QA release",
            "short": short}
