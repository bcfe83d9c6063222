"""The record kinds of the batch's end: the disposition proposal, electronic signatures and QA's release."""

from __future__ import annotations

from typing import Any, Literal, Optional

from fillfinish.record.vocabulary_base import EntryData, _f, entry_kind


# ------------------------------------------------------------------------------------------------ disposition, QA
@entry_kind("disposition", "The disposition proposal: suitable for cell therapy grade or not, with every reason.")
class DispositionData(EntryData):
    verdict: str = _f("suitable for cell therapy grade | not suitable for cell therapy grade")
    suitable: bool = _f("true when suitable")
    reasons: list[Any] = _f("reasons, each with the entries behind it")
    reconciliation: dict[str, Any] = _f("the reconciliation (see reconciliation)")
    proposal: bool = _f("true: QA releases, not the machine")
    pending: list[str] = _f("what is still to come (viable results, QA release)")


@entry_kind("signature", "An electronic signature (21 CFR 11.50/11.70): who, meaning, and the head hash it signs.")
class Signature(EntryData):
    name: str = _f("printed name")
    user_id: str = _f("user id")
    role: str = _f("the signer's role")
    meaning: str = _f("performed | reviewed | approved | released | ...")
    signed_hash: str = _f("hash of the entry (or header) signed")
    signed_seq: int = _f("seq of the entry signed (0 = header)")
    reason: str = _f("the signer's reason or comment")
    signed_at: Optional[str] = _f("when it was signed (record UTC text)", None)
    key_id: Optional[str] = _f("fingerprint of the site key that proves it", None)
    proof: Optional[str] = _f("keyed MAC over batch, signed hash/seq, user, meaning and time (hex)", None)


@entry_kind("release", "QA's release of the batch, with the disposition it releases and the retention date.")
class Release(EntryData):
    decision: Literal["released"] = _f("released", "released")
    decided_by: Optional[str] = _f("QA user id", None)
    retained_samples: Optional[dict[str, Any]] = _f("retained vials and where they are kept", None)
    verdict: Optional[str] = _f("the disposition's verdict", None)
    suitable: Optional[bool] = _f("the disposition's suitability", None)
    disposition_entry: Optional[int] = _f("seq of the disposition entry", None)
    reasons: list[Any] = _f("the disposition's reasons", [])
    reconciliation: dict[str, Any] = _f("the reconciliation", {})
    released_by: str = _f("QA user id")
    name: str = _f("QA printed name")
    signature_entry: int = _f("seq of the release signature")
    signature_hash: str = _f("hash of the release signature")
    ledger_anchor: Optional[str] = _f("global_seq:hash of the ledger head at release", None)
    comment: str = _f("QA's comment", "")
    expiry: Optional[str] = _f("product expiry (ISO date)", None)
    retention_until: Optional[str] = _f("keep the record until (ISO date)", None)
    retention_rules: Optional[dict[str, str]] = _f("each retention rule's date", None)
