"""Tables of the electronic batch record (SQLAlchemy 2 ORM) and the frozen dataclasses callers get back.

Three append-only tables: `batch` (one header per batch), `entry` (the per-batch hash chain) and `ledger` (one row per
header and per entry, chained globally so that entries removed from the end of one batch still leave a trace). The
schema itself is created by the Alembic migration in migrations/versions; these classes must match it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MODES: tuple[str, ...] = ("production", "media_fill", "registry", "simulation")
"""Allowed header modes. `registry` marks a master-data audit trail (fillfinish.record.registry), not a batch;
`simulation` marks a batch run against the simulator (`fillfinish demo`), never releasable (the recipe's own mode
stays in the recipe snapshot)."""

SIMULATION_MODE = "simulation"
"""Mode of batches run against the simulator (issue 6 point 6)."""

REGISTRY_MODE = "registry"
"""Mode of the headers that carry a registry's chain (recipes, users, materials, ...) instead of a batch."""

KNOWN_KINDS: tuple[str, ...] = (
    "state",
    "command_refused",
    "phase",
    "intent",
    "outcome",
    "measurement",
    "alarm",
    "interlock",
    "vial",
    "operator",
    "exception",
    "deviation",
    "disposition",
    "recovery",
)
"""Entry kinds the controller uses (decision 0001); the store accepts other lowercase kinds too (e.g. signature)."""


class Base(DeclarativeBase):
    """Declarative base of the record tables."""


class BatchRow(Base):
    """One batch header: what was made, from which recipe, by whom, under which site config."""

    __tablename__ = "batch"

    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[str] = mapped_column(String(32))
    product: Mapped[str] = mapped_column(Text)
    product_code: Mapped[str] = mapped_column(Text)
    recipe_name: Mapped[str] = mapped_column(Text)
    recipe_version: Mapped[str] = mapped_column(Text)
    recipe_hash: Mapped[str] = mapped_column(String(64))
    recipe_snapshot: Mapped[str] = mapped_column(Text)
    lot: Mapped[str] = mapped_column(Text)
    planned_vials: Mapped[int] = mapped_column(Integer)
    operator: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(16))
    site_config: Mapped[str] = mapped_column(Text)
    header_hash: Mapped[str] = mapped_column(String(64))


class EntryRow(Base):
    """One record entry of a batch, chained to the previous one by prev_hash."""

    __tablename__ = "entry"
    __table_args__ = (UniqueConstraint("batch_id", "seq", name="uq_entry_batch_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(32), ForeignKey("batch.batch_id"))
    seq: Mapped[int] = mapped_column(Integer)
    global_seq: Mapped[int] = mapped_column(Integer, unique=True)
    ts: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LedgerRow(Base):
    """One row per written header (seq 0) or entry, chained across all batches in write order."""

    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("batch_id", "seq", name="uq_ledger_batch_seq"),)

    global_seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    batch_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    record_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(String(32))  # migration 0003: per-line ledger chains (decision 0012)
    line_seq: Mapped[int] = mapped_column(Integer)
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)


@dataclass(frozen=True)
class BatchHeader:
    """A batch header as callers see it (not an ORM object); site_config is the parsed JSON snapshot."""

    batch_id: str
    created_at: datetime
    product: str
    product_code: str
    recipe_name: str
    recipe_version: str
    recipe_hash: str
    recipe_snapshot: str
    lot: str
    planned_vials: int
    operator: str
    mode: str
    site_config: dict[str, Any] = field(hash=False)
    header_hash: str


@dataclass(frozen=True)
class Entry:
    """One committed record entry as callers see it; ts is an aware UTC datetime, data the parsed JSON."""

    batch_id: str
    seq: int
    global_seq: int
    ts: datetime
    kind: str
    actor: str
    data: dict[str, Any] = field(hash=False)
    prev_hash: str
    hash: str
