"""What `record verify` reports: the first problem per batch, per line's ledger, and the whole record's verdict.

Plain result types shared by the batch check (verify_batches.py), the ledger check (verify_ledger.py) and the
callers (CLI, release, backup, summaries); nothing here reads the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_KINDS: tuple[str, ...] = ("changed", "inserted", "removed", "reordered", "header changed",
                                  "signature not valid")
"""The kinds of problem verify names."""



@dataclass(frozen=True)
class Problem:
    """The first thing found wrong: at which seq (0 = the header; line_seq for a ledger), what kind, and why."""

    seq: int
    kind: str
    detail: str
    entry_kind: str | None = None

    def describe(self, what: str = "entry") -> str:
        """One line for people, e.g. 'entry 7 (vial): changed: content does not match its hash'."""
        where = "header" if self.seq == 0 and what == "entry" else f"{what} {self.seq}"
        if self.entry_kind:
            where += f" ({self.entry_kind})"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class BatchResult:
    """Verification of one batch: ok, how many entries were checked, the first problem if any, and the seqs of every
    signature entry that is not valid (not bound to this batch, or without a valid proof under the site key)."""

    batch_id: str
    ok: bool
    entries_checked: int
    problem: Problem | None = None
    invalid_signatures: tuple[int, ...] = ()
    note: str | None = None  # e.g. how a purged batch is shown (fillfinish.record.tombstones)


@dataclass(frozen=True)
class LedgerResult:
    """Verification of the ledger chains (one per line, write order), their MACs, witnesses and an optional anchor.

    `head` is the head (line_seq, hash) of the store's own line (or of the only line); `heads` names every line's."""

    ok: bool
    rows_checked: int
    head: tuple[int, str] | None
    problem: Problem | None = None
    line: str | None = None
    heads: dict[str, tuple[int, str]] = field(default_factory=dict, hash=False)
    keyed: bool = False
    unchecked: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyReport:
    """Result of verify(): one BatchResult per batch checked plus the ledger result; ok only if all are ok."""

    batches: list[BatchResult]
    ledger: LedgerResult
    accounts: Any = None

    @property
    def ok(self) -> bool:
        """True when every batch, the ledger (and the accounts, when checked) verified."""
        accounts_ok = self.accounts is None or getattr(self.accounts, "ok", True)
        return self.ledger.ok and accounts_ok and all(result.ok for result in self.batches)

    @property
    def key_checked(self) -> bool:
        """True when the MACs, signature proofs and witnesses were checked with the site key."""
        return self.ledger.keyed

    def result(self, batch_id: str) -> BatchResult:
        """The result of one batch (KeyError if it was not checked)."""
        for result in self.batches:
            if result.batch_id == batch_id:
                return result
        raise KeyError(batch_id)

    def lines(self) -> list[str]:
        """Human-readable lines: one per batch, one for the ledger, what could not be checked, the accounts."""
        out = []
        for result in self.batches:
            if result.ok and result.note:
                out.append(f"{result.batch_id}: {result.note}")
            elif result.ok:
                out.append(f"{result.batch_id}: intact ({result.entries_checked} entries)")
            else:
                assert result.problem is not None
                out.append(f"{result.batch_id}: NOT INTACT: {result.problem.describe()}")
        led = self.ledger
        head = f"head {led.head[0]}:{led.head[1]}" if led.head else "empty"
        lines_text = f", {len(led.heads)} lines" if len(led.heads) > 1 else ""
        if led.ok:
            out.append(f"ledger: intact ({led.rows_checked} rows{lines_text}, {head})")
        else:
            assert led.problem is not None
            where = f" line {led.line}" if led.line and len(led.heads) > 1 else ""
            out.append(f"ledger: NOT INTACT:{where} {led.problem.describe('row')} ({head})")
        out.extend(f"note: {note}" for note in led.notes)
        out.extend(f"NOT CHECKED: {text}" for text in led.unchecked)
        if self.accounts is not None:
            out.extend(self.accounts.lines())
        return out
