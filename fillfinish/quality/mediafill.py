"""Media-fill (APS) outcome after incubation (EU GMP Annex 1 9.32-9.49): units incubated, units with growth, units not
incubated with a justification, read by one person and verified by another, both signing.

Pass only with zero growth and every filled unit accounted for (incubated + not incubated = units filled). The result
is a `mediafill_result` entry in the media-fill batch's chain (with the reader's 'performed' and the verifier's
'reviewed' signature) and an entry of kind `mediafill_result` in registry `mediafill` with exactly
{"batch_id", "line_id", "passed", "operators", "result_at"}: the master-data checks read it to qualify the line and the
operators who performed the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from fillfinish.people.signatures import sign
from fillfinish.people.users import UserStore
from fillfinish.quality.common import REVIEWER_ROLES, QualityRefused, authenticated, line_id_of
from fillfinish.quality.release import performers
from fillfinish.record.export.summary import vial_counts
from fillfinish.record.models import Entry
from fillfinish.record.registry import append_registry
from fillfinish.record.store import RecordStore
from fillfinish.record.vocabulary import typed
from fillfinish.record.vocabulary_registries import MediaFillResult

REGISTRY = "mediafill"
RESULT_KIND = "mediafill_result"
MEDIA_FILL_MODE = "media_fill"
READER_ROLES = ("operator", "supervisor", "qa")


@dataclass(frozen=True)
class MediaFillOutcome:
    """What was written: the batch entry, both signatures and the registry entry."""

    result: Entry
    reader_signature: Entry
    verifier_signature: Entry
    registry: Entry

    @property
    def passed(self) -> bool:
        """True when the media fill passed."""
        data = typed(self.result)
        return isinstance(data, MediaFillResult) and data.passed


def units_filled(entries: list[Entry]) -> int:
    """Units that received medium: every judged vial (accepted, rejected or uncertain)."""
    return sum(vial_counts(entries).values())


def record_result(store: RecordStore, batch_id: str, *, incubated: int, growth: int, not_incubated: int,
                  justification: str, reader: str, reader_password: str, verifier: str, verifier_password: str,
                  users: UserStore | None = None) -> MediaFillOutcome:
    """Record the media-fill outcome (reader and verifier authenticate and sign); QualityRefused on bad input."""
    header = store.batch(batch_id)
    people = users or UserStore(store)
    reader_account = authenticated(people, reader, reader_password, READER_ROLES, f"read media fill {batch_id}")
    verifier_account = authenticated(people, verifier, verifier_password, REVIEWER_ROLES,
                                     f"verify media fill {batch_id}")
    entries = store.entries(batch_id)
    filled = units_filled(entries)
    reasons = []
    if header.mode != MEDIA_FILL_MODE:
        reasons.append(f"the batch is a {header.mode} batch, not a media fill")
    if any(e.kind == RESULT_KIND for e in entries):
        reasons.append("the media-fill result is already recorded")
    if not any(e.kind == "disposition" for e in entries):
        reasons.append("the media fill has not ended (no disposition recorded)")
    for name, value in (("--incubated", incubated), ("--growth", growth), ("--not-incubated", not_incubated)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            reasons.append(f"{name} {value!r} must be a whole number >= 0")
    if isinstance(growth, int) and isinstance(incubated, int) and growth > incubated:
        reasons.append(f"units with growth ({growth}) exceed units incubated ({incubated})")
    if not_incubated and not justification.strip():
        reasons.append(f"{not_incubated} units not incubated need a justification")
    if reader_account.username == verifier_account.username:
        reasons.append("reader and verifier must be two different people")
    if reasons:
        raise QualityRefused(batch_id, "media-fill result", reasons)
    accounted = incubated + not_incubated == filled
    passed = growth == 0 and accounted
    why = []
    if growth:
        why.append(f"{growth} unit(s) with growth: the media fill fails (target zero)")
    if not accounted:
        why.append(f"units not accounted for: filled {filled} != incubated {incubated} + not incubated {not_incubated}")
    operators = sorted(performers(store, batch_id, entries))
    result = store.append(batch_id, RESULT_KIND, {
        "units_filled": filled, "incubated": incubated, "growth": growth, "not_incubated": not_incubated,
        "justification": justification.strip(), "accounted": accounted, "passed": passed, "reasons": why,
        "reader": reader_account.username, "verifier": verifier_account.username, "operators": operators,
        "line_id": line_id_of(header)}, reader_account.username)
    reader_sig = sign(store, batch_id, reader_account.username, "", "performed", "media-fill units read",
                      users=people, authenticated=reader_account)
    verifier_sig = sign(store, batch_id, verifier_account.username, "", "reviewed", "media-fill result verified",
                        users=people, authenticated=verifier_account)
    registry = append_registry(store, REGISTRY, RESULT_KIND, {
        "batch_id": batch_id, "line_id": line_id_of(header), "passed": passed, "operators": operators,
        "result_at": result.ts.isoformat()}, verifier_account.username)
    return MediaFillOutcome(result, reader_sig, verifier_sig, registry)
