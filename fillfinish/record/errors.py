"""The batch record's errors, in a module of their own so that the store, verify and their callers share them
without importing each other."""

from __future__ import annotations


class RecordError(Exception):
    """Base of all batch record errors."""


class RecordOpenError(RecordError):
    """The record database could not be opened (bad URL, missing file, unreachable server, unknown schema)."""


class RecordWriteError(RecordError):
    """A record write failed; nothing of it was committed. The message names the batch, kind and cause."""


class UnknownBatchError(RecordError):
    """No batch with this id in the record."""
