"""Electronic signatures (21 CFR 11.50, 11.70, 11.200) as `signature` entries inside a batch's hash chain.

A signature entry names the printed name, user id, role, meaning and reason, and `signed_hash`: the hash of the batch's
last entry (or its header) at signing, i.e. the exact record content the person signed. Because the signature itself is
an ordinary chained entry, it cannot be removed, edited or moved to another batch without `verify` noticing, and
`check_signature` confirms that the hash it names is an earlier entry of the same batch.

Each signature also carries a proof (decision 0012): an HMAC under the site key over the batch, the signed hash and
seq, the signer, the meaning and the time, computed only here, right after the signer's password was checked. A
signature written through the record API without a password, or copied to another batch, has no valid proof:
`record verify` reports it and it shows as NOT VALID wherever signatures are shown; a release counts only with a
valid one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fillfinish.record.chain import format_ts
from fillfinish.record.models import Entry
from fillfinish.record.names import escape_text
from fillfinish.record.sitekey import SiteKeyError, entry_signature_message
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_entries import Unreadable, typed_or_unreadable
from fillfinish.record.vocabulary import Signature as SignatureData
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
    valid: bool = True
    why: str = ""

    def line(self) -> str:
        """One line for people, e.g. 'Jane Roe (jroe, qa) released 2026-11-25 10:03:07 UTC - signs entry 41'
        (control characters in names and reasons escaped; NOT VALID with the reason when the proof fails)."""
        what = "the header" if self.signed_seq == 0 else f"entry {self.signed_seq}"
        bound = "" if self.bound else "  NOT BOUND: names a hash that is not in this record"
        valid = "" if self.valid or not self.bound else f"  NOT VALID: {escape_text(self.why)}"
        if not self.bound:
            bound += "  NOT VALID"
        reason = f" ({escape_text(self.reason)})" if self.reason else ""
        return (f"{escape_text(self.name)} ({escape_text(self.user_id)}, {escape_text(self.role)}) "
                f"{escape_text(self.meaning)} {self.ts:%Y-%m-%d %H:%M:%S} UTC{reason}"
                f" - signs {what} {self.signed_hash[:12]}{bound}{valid}")


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
    try:
        key = store.site_key(create=True)
    except SiteKeyError as exc:
        raise SignatureRefused(f"refusing to sign: {exc}") from exc
    if key is None:
        raise SignatureRefused("refusing to sign: no site key to prove the signature with")
    signed_at = format_ts(store.record_time())
    proof = key.mac(entry_signature_message(batch_id=batch_id, signed_hash=signed_hash, signed_seq=signed_seq,
                                            user_id=account.username, meaning=meaning, signed_at=signed_at))
    data = {
        "name": account.full_name,
        "user_id": account.username,
        "role": account.role,
        "meaning": meaning,
        "signed_hash": signed_hash,
        "signed_seq": signed_seq,
        "reason": reason,
        "signed_at": signed_at,
        "key_id": key.fingerprint,
        "proof": proof,
    }
    return store.append(batch_id, SIGNATURE_KIND, data, actor=account.username)


def check_signature(entries: list[Entry], signature: Entry) -> bool:
    """True when `signature` names the hash of an earlier entry (or the header) of its own batch, at signed_seq."""
    d = typed_or_unreadable(signature)
    if not isinstance(d, SignatureData):
        return False
    signed_hash, signed_seq = d.signed_hash, d.signed_seq
    if signed_seq == 0:
        first = next((e for e in entries if e.seq == 1), None)
        return first is not None and first.prev_hash == signed_hash and signature.seq >= 1
    return any(e.hash == signed_hash and e.seq == signed_seq and e.seq < signature.seq and e.batch_id ==
               signature.batch_id for e in entries)


def signature_validity(store: RecordStore, batch_id: str, entries: list[Entry] | None = None
                       ) -> dict[int, str | None]:
    """{seq: None when valid, else why not} for every signature entry of the batch: bound to an earlier entry of
    this batch, written by its signer and (with the site key) carrying a valid proof."""
    from fillfinish.record.verify import signature_problem

    entries = store.entries(batch_id) if entries is None else entries
    header_hash = store.batch(batch_id).header_hash
    try:
        key = store.site_key()
    except SiteKeyError:
        key = None
    by_hash = {e.hash: e for e in entries}
    return {e.seq: signature_problem(e, e.data, by_hash, header_hash, key) for e in entries
            if e.kind == SIGNATURE_KIND}


def signature_valid(store: RecordStore, entry: Entry) -> bool:
    """True when one signature entry is valid in its batch (see signature_validity)."""
    return signature_validity(store, entry.batch_id).get(entry.seq, "not a signature") is None


def manifestations(store: RecordStore, batch_id: str) -> list[Manifestation]:
    """Every signature entry of the batch as shown to people, each with whether it is bound to this record and
    whether it is valid (proof under the site key)."""
    entries = store.entries(batch_id)
    header_hash = store.batch(batch_id).header_hash
    validity = signature_validity(store, batch_id, entries)
    out = []
    for entry in entries:
        if entry.kind != SIGNATURE_KIND:
            continue
        why = validity.get(entry.seq)
        d = typed_or_unreadable(entry)
        if not isinstance(d, SignatureData):  # changed outside fillfinish: shown, never bound or valid
            problem = d.problem if isinstance(d, Unreadable) else "not a signature"
            out.append(Manifestation(entry.seq, entry.actor, entry.actor, "?", "?", entry.ts, "", -1, "", False,
                                     False, why or problem))
            continue
        bound = check_signature(entries, entry) or (d.signed_seq == 0 and d.signed_hash == header_hash)
        out.append(Manifestation(entry.seq, d.name, d.user_id, d.role, d.meaning, entry.ts, d.reason, d.signed_seq,
                                 d.signed_hash, bound, why is None, why or ""))
    return out
