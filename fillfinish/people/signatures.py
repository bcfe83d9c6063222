"""Electronic signatures (21 CFR 11.50, 11.70, 11.200) as `signature` entries inside a batch's hash chain.

A signature entry names the printed name, user id, role, meaning and reason, and `signed_hash`: the hash of the batch's
last entry (or its header) at signing, i.e. the exact record content the person signed. Because the signature itself is
an ordinary chained entry, it cannot be removed, edited or moved to another batch without `verify` noticing, and
`check_signature` confirms that the hash it names is an earlier entry of the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fillfinish.record.models import Entry
from fillfinish.record.store import RecordStore
from fillfinish.people.users import PeopleError, PermissionDenied, User, UserStore

MEANINGS: tuple[str, ...] = ("performed", "reviewed", "approved", "released")
"""Meanings a signature may carry (11.50(a)(3))."""

SIGNATURE_KIND = "signature"


class SignatureRefused(PeopleError):
    """The signature was not written (record does not verify, unknown meaning, not allowed, ...)."""


@dataclass(frozen=True)
class Manifestation:
    """A signature as 11.50 requires it shown: printed name, date and time, meaning; plus what it signs."""

    seq: int
    name: str
    user_id: str
    role: str
    meaning: str
    ts: datetime
    reason: str
    signed_seq: int
    signed_hash: str
    bound: bool

    def line(self) -> str:
        """One line for people, e.g. 'Jane Roe (jroe, qa) released 2026-11-25 10:03:07 UTC - signs entry 41'."""
        what = "the header" if self.signed_seq == 0 else f"entry {self.signed_seq}"
        bound = "" if self.bound else "  NOT BOUND: names a hash that is not in this record"
        reason = f" ({self.reason})" if self.reason else ""
        return (f"{self.name} ({self.user_id}, {self.role}) {self.meaning} {self.ts:%Y-%m-%d %H:%M:%S} UTC{reason}"
                f" - signs {what} {self.signed_hash[:12]}{bound}")


def record_ok(store: RecordStore, batch_id: str) -> tuple[bool, str]:
    """(ok, text) of verifying the batch's chain and the global ledger."""
    report = store.verify(batch_id)
    result = report.result(batch_id)
    if not result.ok:
        assert result.problem is not None
        return False, f"batch record {batch_id} does not verify: {result.problem.describe()}"
    if not report.ledger.ok:
        problem = report.ledger.problem.describe("ledger row") if report.ledger.problem else "?"
        return False, f"the record ledger does not verify: {problem}"
    return True, f"intact ({result.entries_checked} entries verified)"


def sign(
    store: RecordStore,
    batch_id: str,
    user: str,
    password: str,
    meaning: str,
    reason: str = "",
    *,
    users: UserStore | None = None,
    roles: tuple[str, ...] | None = None,
    authenticated: User | None = None,
) -> Entry:
    """Authenticate `user` with `password` and append a signature entry signing the batch's current head hash.

    `roles` restricts who may sign (PermissionDenied otherwise). `authenticated` skips the password check for a caller
    that has just authenticated this user for the same action (release, deviation closure). Raises
    AuthenticationError/AccountLocked/PasswordExpired, PermissionDenied, SignatureRefused, or RecordWriteError.
    """
    if meaning not in MEANINGS:
        raise SignatureRefused(f"signature meaning {meaning!r} is not allowed; allowed: {', '.join(MEANINGS)}")
    people = users or UserStore(store)
    account = authenticated or people.authenticate(user, password, purpose=f"sign {meaning} {batch_id}")
    if roles is not None and account.role not in roles:
        raise PermissionDenied(f"user {account.username} has role {account.role}; signing {meaning!r} needs "
                               f"{' or '.join(roles)}")
    ok, text = record_ok(store, batch_id)
    if not ok:
        raise SignatureRefused(f"refusing to sign: {text}")
    head = store.last_entry(batch_id)
    signed_hash = head.hash if head is not None else store.batch(batch_id).header_hash
    signed_seq = head.seq if head is not None else 0
    data = {
        "name": account.full_name,
        "user_id": account.username,
        "role": account.role,
        "meaning": meaning,
        "signed_hash": signed_hash,
        "signed_seq": signed_seq,
        "reason": reason,
    }
    return store.append(batch_id, SIGNATURE_KIND, data, actor=account.username)


def check_signature(entries: list[Entry], signature: Entry) -> bool:
    """True when `signature` names the hash of an earlier entry (or the header) of its own batch, at signed_seq."""
    signed_hash = signature.data.get("signed_hash")
    signed_seq = signature.data.get("signed_seq")
    if signature.kind != SIGNATURE_KIND or not isinstance(signed_hash, str):
        return False
    if signed_seq == 0:
        first = next((e for e in entries if e.seq == 1), None)
        return first is not None and first.prev_hash == signed_hash and signature.seq >= 1
    return any(e.hash == signed_hash and e.seq == signed_seq and e.seq < signature.seq and e.batch_id ==
               signature.batch_id for e in entries)


def manifestations(store: RecordStore, batch_id: str) -> list[Manifestation]:
    """Every signature entry of the batch as shown to people, each with whether it is bound to this record."""
    entries = store.entries(batch_id)
    header_hash = store.batch(batch_id).header_hash
    out = []
    for entry in entries:
        if entry.kind != SIGNATURE_KIND:
            continue
        d = entry.data
        seq = int(d.get("signed_seq", -1)) if isinstance(d.get("signed_seq"), int) else -1
        bound = check_signature(entries, entry) or (seq == 0 and d.get("signed_hash") == header_hash)
        out.append(Manifestation(entry.seq, str(d.get("name", entry.actor)), str(d.get("user_id", entry.actor)),
                                 str(d.get("role", "?")), str(d.get("meaning", "?")), entry.ts,
                                 str(d.get("reason", "")), seq, str(d.get("signed_hash", "")), bound))
    return out
