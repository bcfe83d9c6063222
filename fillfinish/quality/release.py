"""QA release or rejection of a batch by an authorised person with an e-signature (EU GMP Annex 11 s.15, 21 CFR 11).

Release is refused (with every reason) when the record does not verify, the disposition is missing, the batch is a
simulation, a deviation touching the batch is open, a planned viable monitoring result is missing or unverified, the
batch was already released or rejected, the user is not QA, or the QA user took part in performing the batch. The
expiry date is mandatory: the retention date (latest of fillfinish/record/retention.py's rules) is stored with the
decision. The final verdict is the disposition proposal plus the viable results (growth in grade A makes the batch not
suitable for cell therapy grade). Rejection needs no complete results: QA may reject at any time after the fill.
Moved here from fillfinish/people/release.py (which forwards to this module).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fillfinish.batch.disposition import NOT_SUITABLE
from fillfinish.people.signatures import SIGNATURE_KIND, record_ok, sign, signature_validity
from fillfinish.people.users import PeopleError, PermissionDenied, User, UserStore
from fillfinish.quality import deviations as devs
from fillfinish.quality import viable
from fillfinish.quality.common import QA_ROLE, QUALITY_KINDS
from fillfinish.record.models import Entry
from fillfinish.record.retention import retention_rules, retention_until
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_entries import of_type, read_typed
from fillfinish.record.vocabulary import DispositionData, RetainedSample
from fillfinish.record.vocabulary import Release as ReleaseData
from fillfinish.record.vocabulary import Signature as SignatureData
from fillfinish.record.vocabulary_registries import Rejection

RELEASE_KIND = "release"
REJECTION_KIND = "rejection"
DECISION_KINDS = (RELEASE_KIND, REJECTION_KIND)
QA_KINDS = QUALITY_KINDS
from fillfinish.record.models import SIMULATION_MODE  # noqa: E402 - one definition


class ReleaseRefused(PeopleError):
    """Release (or rejection, or deviation closure) refused; `reasons` lists every reason."""

    def __init__(self, batch_id: str, reasons: list[str], action: str = "release") -> None:
        """Keep the reasons; the message lists them all."""
        self.batch_id = batch_id
        self.reasons = list(reasons)
        super().__init__(f"batch {batch_id}: {action} refused: " + "; ".join(reasons))


@dataclass
class ReleaseReadiness:
    """What stands between the batch and its release (empty `blockers` = ready, apart from who releases)."""

    batch_id: str
    integrity: str
    disposition: DispositionData | None
    disposition_seq: int | None
    open_deviations: list[devs.Deviation] = field(default_factory=list)
    performers: set[str] = field(default_factory=set)
    decided: Entry | None = None
    viable: viable.ViableStatus | None = None
    blockers: list[str] = field(default_factory=list)
    mode: str = "production"

    @property
    def ready(self) -> bool:
        """True when nothing blocks release."""
        return not self.blockers

    @property
    def released(self) -> Entry | None:
        """The release entry, if the batch was released."""
        return self.decided if self.decided is not None and self.decided.kind == RELEASE_KIND else None

    def final_verdict(self) -> tuple[str | None, list[dict[str, Any]]]:
        """(verdict, reasons): the disposition proposal plus the viable results' reasons."""
        disp = self.disposition
        reasons = list(disp.reasons) if disp is not None else []
        extra = self.viable.unsuitable_reasons() if self.viable is not None else []
        verdict = disp.verdict if disp is not None else None
        if extra:
            verdict = NOT_SUITABLE
        return (str(verdict) if verdict is not None else None), reasons + extra


@dataclass(frozen=True)
class ReleaseResult:
    """The entries written by a release or rejection."""

    signature: Entry
    release: Entry


def decision(entries: list[Entry], valid: dict[int, str | None] | None = None) -> Entry | None:
    """The batch's final QA decision entry (release or rejection), if any; with `valid` (signature seq -> problem,
    from signature_validity) a decision counts only when its signature is valid (issue 6.4: a forged or copied
    release signature releases nothing)."""
    for row in read_typed(entries):
        if isinstance(row.data, (ReleaseData, Rejection)) and (
                valid is None or valid.get(row.data.signature_entry, "no signature") is None):
            return row.entry
    return None


def performers(store: RecordStore, batch_id: str, entries: list[Entry]) -> set[str]:
    """People who performed the batch: the header operator, every actor of a non-QA entry or 'performed' signature
    of the fill itself (signatures of quality entries such as viable results do not count)."""
    people = {store.batch(batch_id).operator}
    quality_seqs = {e.seq for e in entries if e.kind in QA_KINDS}
    for row in read_typed(entries):
        d = row.data
        if row.kind not in QA_KINDS:
            people.add(row.actor)
        elif isinstance(d, SignatureData) and d.meaning == "performed" and d.signed_seq not in quality_seqs:
            people.add(d.user_id)
        sig = getattr(d, "signature", None)  # the manifestation some kinds carry (run_start: the operator)
        if isinstance(sig, dict) and sig.get("meaning") == "performed" and sig.get("name"):
            people.add(str(sig["name"]))
    return people - {"system", "monitor", "controller"}


def readiness(store: RecordStore, batch_id: str) -> ReleaseReadiness:
    """Check everything about the batch that blocks release (raises UnknownBatchError for an unknown batch)."""
    header = store.batch(batch_id)
    entries = store.entries(batch_id)
    ok, integrity = record_ok(store, batch_id)
    found = of_type(read_typed(entries), DispositionData)
    disp = found[-1] if found else None
    r = ReleaseReadiness(batch_id, integrity, disp.data if disp else None, disp.seq if disp else None,
                         [d for d in devs.fold(header, entries) if d.is_open], performers(store, batch_id, entries),
                         decision(entries, signature_validity(store, batch_id, entries)),
                         viable.status(header, entries), mode=header.mode)
    if not ok:
        r.blockers.append(integrity)
    if header.mode == SIMULATION_MODE:
        r.blockers.append("the batch ran in simulation mode; a simulation is never released")
    if disp is None:
        r.blockers.append("no disposition recorded (the batch has not ended)")
    for dev in r.open_deviations:
        name = dev.number or f"(not numbered yet, alarm entries {dev.alarm_entries})"
        r.blockers.append(f"deviation open: {name}: {dev.title} ({dev.state()}); work it with `fillfinish deviation "
                          f"update` and close it with `fillfinish deviation close`")
    assert r.viable is not None
    r.blockers.extend(r.viable.blockers())
    if r.decided is not None:
        what = "released" if r.decided.kind == RELEASE_KIND else "rejected"
        r.blockers.append(f"already {what} (entry {r.decided.seq} by {r.decided.actor})")
    return r


def _qa_user(users: UserStore, user: str, password: str, purpose: str) -> User:
    """Authenticate and require the QA role."""
    account = users.authenticate(user, password, purpose=purpose)
    if account.role != QA_ROLE:
        raise PermissionDenied(f"user {account.username} has role {account.role}; {purpose} needs role {QA_ROLE}")
    return account


def _decide(store: RecordStore, batch_id: str, account: User, people: UserStore, kind: str, state: ReleaseReadiness,
            expiry: dt.date, comment: str, extra: dict[str, Any]) -> ReleaseResult:
    """Write the QA signature and then the decision entry with verdict, retention date and retained samples."""
    report = store.verify(batch_id)
    head = report.ledger.head
    meaning_reason = comment or ("QA batch release" if kind == RELEASE_KIND else "QA batch rejection")
    signature = sign(store, batch_id, account.username, "", "released" if kind == RELEASE_KIND else "approved",
                     meaning_reason, users=people, authenticated=account)
    verdict, reasons = state.final_verdict()
    disp = state.disposition
    certified = signature.ts.date()
    retained = [r.data for r in of_type(read_typed(store.entries(batch_id, kinds=["retained_sample"])),
                                         RetainedSample)]
    data = {
        "decision": "released" if kind == RELEASE_KIND else "rejected",
        "verdict": verdict,
        "suitable": verdict is not None and verdict != NOT_SUITABLE and (disp is None or disp.suitable),
        "disposition_entry": state.disposition_seq,
        "reasons": reasons,
        "reconciliation": disp.reconciliation if disp is not None else {},
        "decided_by": account.username,
        "released_by" if kind == RELEASE_KIND else "rejected_by": account.username,
        "name": account.full_name,
        "signature_entry": signature.seq,
        "signature_hash": signature.hash,
        "ledger_anchor": f"{head[0]}:{head[1]}" if head else None,
        "comment": comment,
        "expiry": expiry.isoformat(),
        "retention_until": retention_until(expiry, certified).isoformat(),
        "retention_rules": {k: v.isoformat() for k, v in retention_rules(expiry, certified).items()},
        "retained_samples": {"vials": [v for kept in retained for v in kept.vials],
                             "location": retained[-1].location if retained else None},
        **extra,
    }
    entry = store.append(batch_id, kind, data, actor=account.username)
    return ReleaseResult(signature, entry)


def release(store: RecordStore, batch_id: str, user: str, password: str, *, expiry: dt.date, comment: str = "",
            users: UserStore | None = None) -> ReleaseResult:
    """QA release of `batch_id` by `user` (user id + password); raises ReleaseRefused listing every reason.

    Authentication errors and PermissionDenied (not QA) are raised first; then readiness and segregation of duties.
    """
    people = users or UserStore(store)
    account = _qa_user(people, user, password, f"release {batch_id}")
    if not isinstance(expiry, dt.date):
        raise ReleaseRefused(batch_id, ["the product expiry date is mandatory (YYYY-MM-DD)"])
    state = readiness(store, batch_id)
    reasons = list(state.blockers)
    if account.username in state.performers:
        reasons.append(f"{account.username} took part in performing this batch; QA may not release a batch they "
                       "operated (segregation of duties)")
    if reasons:
        raise ReleaseRefused(batch_id, reasons)
    return _decide(store, batch_id, account, people, RELEASE_KIND, state, expiry, comment, {})


def reject(store: RecordStore, batch_id: str, user: str, password: str, *, reason: str, expiry: dt.date,
           users: UserStore | None = None) -> ReleaseResult:
    """QA rejects `batch_id` (signed, with a reason); refused for a released/rejected batch, one without a
    disposition, a record that does not verify, or a QA person who performed the batch."""
    people = users or UserStore(store)
    account = _qa_user(people, user, password, f"reject {batch_id}")
    state = readiness(store, batch_id)
    reasons = [b for b in state.blockers if b.startswith(("already ", "no disposition", "batch record", "the record"))]
    if not reason.strip():
        reasons.append("a rejection needs a reason")
    if account.username in state.performers:
        reasons.append(f"{account.username} took part in performing this batch (segregation of duties)")
    if reasons:
        raise ReleaseRefused(batch_id, reasons, "rejection")
    return _decide(store, batch_id, account, people, REJECTION_KIND, state, expiry, reason.strip(),
                   {"reason": reason.strip(), "open_deviations": [d.number for d in state.open_deviations]})
