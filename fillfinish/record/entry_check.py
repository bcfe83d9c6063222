"""An entry checked once before it is appended: kind and actor well formed, data plain JSON in canonical form and in
the record vocabulary. The batch recorder checks at the caller (a refusal raises there, nothing queued) and hands the
checked entry to its writer thread, so the store does not check it a second time (issue 10)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fillfinish.record.chain import CanonicalJSONError, canonical_json_normalised, normalise
from fillfinish.record.errors import RecordWriteError
from fillfinish.record.names import check_actor
from fillfinish.record.vocabulary import validate_entry

KIND_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""An entry kind's spelling: lowercase letters, digits and _, at most 64 characters."""


@dataclass(frozen=True, slots=True)
class CheckedEntry:
    """An entry that passed `check_entry`: its data normalised, and the canonical JSON text that is stored and hashed."""

    kind: str
    actor: str
    payload: dict[str, Any]
    data_text: str


def text_field(name: str, value: object) -> str:
    """`value` if it is a non-empty string, else a ValueError naming the field."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_entry(batch_id: str, kind: str, data: Mapping[str, Any], actor: str) -> CheckedEntry:
    """The entry checked for appending to `batch_id`; RecordWriteError (naming the kind, the batch and what was wrong)
    for a bad kind or actor, data that is not plain JSON, or an undeclared kind or field (its cause the
    VocabularyError)."""
    try:
        if not isinstance(kind, str) or not KIND_RE.fullmatch(kind):
            raise ValueError(f"kind must be lowercase letters, digits and _ (e.g. 'vial'), got {kind!r}")
        check_actor(text_field("actor", actor))
        if not isinstance(data, Mapping):
            raise ValueError(f"data must be a mapping (JSON object), got {type(data).__name__}")
        payload: dict[str, Any] = normalise(data)
        data_text = canonical_json_normalised(payload)
        validate_entry(kind, payload)  # the record vocabulary: an undeclared kind or field is refused (VocabularyError)
    except (CanonicalJSONError, ValueError, TypeError) as exc:
        raise RecordWriteError(f"cannot record {kind!r} entry for batch {batch_id}: {exc}") from exc
    return CheckedEntry(kind, actor, payload, data_text)
