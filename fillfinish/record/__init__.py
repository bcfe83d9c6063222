"""The electronic batch record: append-only, hash-chained entries per batch on SQLite or PostgreSQL (docs/record.md)."""

from fillfinish.record.chain import canonical_json, entry_hash, header_hash
from fillfinish.record.models import KNOWN_KINDS, MODES, BatchHeader, Entry
from fillfinish.record.render import render_text, to_json
from fillfinish.record.store import (
    RecordError,
    RecordOpenError,
    RecordStore,
    RecordWriteError,
    UnknownBatchError,
)
from fillfinish.record.verify import BatchResult, LedgerResult, Problem, VerifyReport, verify

__all__ = [
    "KNOWN_KINDS",
    "MODES",
    "BatchHeader",
    "BatchResult",
    "Entry",
    "LedgerResult",
    "Problem",
    "RecordError",
    "RecordOpenError",
    "RecordStore",
    "RecordWriteError",
    "UnknownBatchError",
    "VerifyReport",
    "canonical_json",
    "entry_hash",
    "header_hash",
    "render_text",
    "to_json",
    "verify",
]
