"""QA review and release of a batch, and closure of its deviations, by an authorised person with an e-signature.

Release (EU GMP Annex 11 s.15; domain brief "People", "Records") is refused when the record does not verify, the
disposition is missing, a deviation is open, the batch was already released, the user is not QA, or the QA user took
part in performing the batch (segregation of duties). On success a `signature` entry (meaning "released", signing the
reviewed record) and then a `release` entry with the final disposition are appended to the batch's chain.
"""

from __future__ import annotations

import datetime as dt

from dataclasses import dataclass, field
from typing import Any

from fillfinish.people.signatures import SIGNATURE_KIND, record_ok, sign, signature_validity
from fillfinish.people.users import PeopleError, PermissionDenied, User, UserStore
from fillfinish.record.retention import retention_rules, retention_until
from fillfinish.record.models import SIMULATION_MODE, Entry
from fillfinish.record.store import RecordStore

RELEASE_KIND = "release"
QA_ROLE = "qa"
QA_KINDS = frozenset({SIGNATURE_KIND, "deviation", RELEASE_KIND})
"""Entry kinds a QA person writes while reviewing; being their actor is not 'performing' the batch."""


class ReleaseRefused(PeopleError):
    """Release (or deviation closure) refused; `reasons` lists every reason."""

    def __init__(self, batch_id: str, reasons: list[str], action: str = "release") -> None:
        """Keep the reasons; the message lists them all."""
        self.batch_id = batch_id
        self.reasons = list(reasons)
        super().__init__(f"batch {batch_id}: {action} refused: " + "; ".join(reasons))


@dataclass(frozen=True)
class OpenDeviation:
    """A deviation opened and not yet closed: the entry that opened it and the alarm it refers to."""

    seq: int
    alarm_entry: int | None
    source: str
    message: str


@dataclass
class ReleaseReadiness:
    """What stands between the batch and its release (empty `blockers` = ready, apart from who releases)."""

    batch_id: str
    integrity: str
    disposition: dict[str, Any] | None
    disposition_seq: int | None
    open_deviations: list[OpenDeviation] = field(default_factory=list)
    performers: set[str] = field(default_factory=set)
    released: Entry | None = None
    blockers: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """True when nothing blocks release."""
        return not self.blockers


@dataclass(frozen=True)
class ReleaseResult:
    """The entries written by a release."""

    signature: Entry
    release: Entry


def open_deviations(entries: list[Entry]) -> list[OpenDeviation]:
    """Deviations with event 'opened' and no later 'closed' entry for the same alarm entry (or opening entry)."""
    opened: dict[Any, Entry] = {}
    for e in entries:
        if e.kind != "deviation":
            continue
        key = e.data.get("alarm_entry", f"seq:{e.seq}")
        if e.data.get("event", "opened") == "opened":
            opened[key] = e
        elif e.data.get("event") == "closed":
            opened.pop(key, None)
            opened.pop(f"seq:{e.data.get('opened_entry')}", None)
    return [
        OpenDeviation(e.seq, e.data.get("alarm_entry") if isinstance(e.data.get("alarm_entry"), int) else None,
                      str(e.data.get("source", "")), str(e.data.get("message", "")))
        for e in sorted(opened.values(), key=lambda x: x.seq)
    ]


def performers(store: RecordStore, batch_id: str, entries: list[Entry]) -> set[str]:
    """People who performed the batch: the header operator, and every actor of a non-QA entry or 'performed' signature."""
    people = {store.batch(batch_id).operator}
    for e in entries:
        if e.kind not in QA_KINDS:
            people.add(e.actor)
        elif e.kind == SIGNATURE_KIND and e.data.get("meaning") == "performed":
            people.add(str(e.data.get("user_id", e.actor)))
        sig = e.data.get("signature")
        if isinstance(sig, dict) and sig.get("meaning") == "performed" and sig.get("name"):
            people.add(str(sig["name"]))
    return people - {"system", "monitor", "controller"}


def readiness(store: RecordStore, batch_id: str) -> ReleaseReadiness:
    """Check everything about the batch that blocks release (raises UnknownBatchError for an unknown batch)."""
    entries = store.entries(batch_id)
    ok, integrity = record_ok(store, batch_id)
    disp = next((e for e in reversed(entries) if e.kind == "disposition"), None)
    valid = signature_validity(store, batch_id, entries)
    released = next((e for e in entries if e.kind == RELEASE_KIND  # counts only with a valid signature (issue 6.4)
                     and valid.get(e.data.get("signature_entry"), "no signature") is None), None)
    r = ReleaseReadiness(batch_id, integrity, disp.data if disp else None, disp.seq if disp else None,
                         open_deviations(entries), performers(store, batch_id, entries), released)
    if not ok:
        r.blockers.append(integrity)
    if disp is None:
        r.blockers.append("no disposition recorded (the batch has not ended)")
    for dev in r.open_deviations:
        r.blockers.append(f"deviation open (entry {dev.seq}, alarm entry {dev.alarm_entry}: {dev.message or dev.source}); "
                          f"close it with `fillfinish deviation close {batch_id} {dev.alarm_entry}`")
    if released is not None:
        r.blockers.append(f"already released (entry {released.seq} by {released.actor})")
    return r


def _qa_user(users: UserStore, user: str, password: str, purpose: str) -> User:
    """Authenticate and require the QA role."""
    account = users.authenticate(user, password, purpose=purpose)
    if account.role != QA_ROLE:
        raise PermissionDenied(f"user {account.username} has role {account.role}; {purpose} needs role {QA_ROLE}")
    return account


def release(
    store: RecordStore,
    batch_id: str,
    user: str,
    password: str,
    *,
    comment: str = "",
    users: UserStore | None = None,
    expiry: "dt.date | None" = None,
) -> ReleaseResult:
    """QA release of `batch_id` by `user` (user id + password); raises ReleaseRefused listing every reason.

    Authentication errors and PermissionDenied (not QA) are raised first; then readiness and segregation of duties.
    """
    if store.batch(batch_id).mode == SIMULATION_MODE:  # simulation never passes for production (issue 6.6)
        raise ReleaseRefused(batch_id, ["it was run on the simulator (mode simulation) and can never be released"])
    people = users or UserStore(store)
    account = _qa_user(people, user, password, f"release {batch_id}")
    state = readiness(store, batch_id)
    reasons = list(state.blockers)
    if account.username in state.performers:
        reasons.append(f"{account.username} took part in performing this batch; QA may not release a batch they "
                       "operated (segregation of duties)")
    if reasons:
        raise ReleaseRefused(batch_id, reasons)
    report = store.verify(batch_id)
    head = report.ledger.head
    disp = state.disposition or {}
    signature = sign(store, batch_id, account.username, "", "released", comment or "QA batch release",
                     users=people, authenticated=account)
    data = {
        "verdict": disp.get("verdict"),
        "suitable": disp.get("suitable"),
        "disposition_entry": state.disposition_seq,
        "reasons": disp.get("reasons", []),
        "reconciliation": disp.get("reconciliation", {}),
        "released_by": account.username,
        "name": account.full_name,
        "signature_entry": signature.seq,
        "signature_hash": signature.hash,
        "ledger_anchor": f"{head[0]}:{head[1]}" if head else None,
        "comment": comment,
    }
    if expiry is not None:  # keep-until date: the latest of the retention rules (fillfinish/record/retention.py)
        certified = signature.ts.date()
        data["expiry"] = expiry.isoformat()
        data["retention_until"] = retention_until(expiry, certified).isoformat()
        data["retention_rules"] = {k: v.isoformat() for k, v in retention_rules(expiry, certified).items()}
    entry = store.append(batch_id, RELEASE_KIND, data, actor=account.username)
    return ReleaseResult(signature, entry)


def close_deviation(
    store: RecordStore,
    batch_id: str,
    alarm_entry: int,
    user: str,
    password: str,
    root_cause: str,
    capa: str,
    *,
    users: UserStore | None = None,
) -> tuple[Entry, Entry]:
    """QA closes the open deviation of `alarm_entry` with root cause and CAPA: a `deviation` entry event='closed',
    then a signature (meaning 'approved') signing it. Returns (deviation entry, signature entry)."""
    if not root_cause.strip() or not capa.strip():
        raise ReleaseRefused(batch_id, ["root cause and CAPA must both be given"], "deviation closure")
    people = users or UserStore(store)
    account = _qa_user(people, user, password, f"close deviation {batch_id}/{alarm_entry}")
    open_ = open_deviations(store.entries(batch_id))
    match = next((d for d in open_ if d.alarm_entry == alarm_entry), None)
    if match is None:
        listed = ", ".join(f"alarm entry {d.alarm_entry} (deviation entry {d.seq})" for d in open_) or "none"
        raise ReleaseRefused(batch_id, [f"no open deviation for alarm entry {alarm_entry}; open: {listed}"],
                             "deviation closure")
    ok, integrity = record_ok(store, batch_id)
    if not ok:
        raise ReleaseRefused(batch_id, [integrity], "deviation closure")
    closed = store.append(
        batch_id, "deviation",
        {"event": "closed", "alarm_entry": alarm_entry, "opened_entry": match.seq, "source": match.source,
         "message": match.message, "root_cause": root_cause.strip(), "capa": capa.strip(),
         "closed_by": account.username},
        actor=account.username,
    )
    signature = sign(store, batch_id, account.username, "", "approved",
                     f"deviation closure (alarm entry {alarm_entry})", users=people, authenticated=account)
    return closed, signature
