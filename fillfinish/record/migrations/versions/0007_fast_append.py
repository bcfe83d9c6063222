"""PostgreSQL: no foreign key from entry.batch_id to batch (decision 0024): the append path's cost, not its guarantee.

The check of that key locks the batch row (FOR KEY SHARE) on every append, which writes the row's lock into the heap
and the WAL each time: about a third of the server's work per entry. What it guarded is kept elsewhere: the write
path reads the batch header before its first append to a batch (RecordWriteError for an unknown batch), the
append-only triggers refuse deleting a header with entries (only a permitted purge deletes, entries first), and
`record verify` reports entries whose header is missing. SQLite keeps its key (a B-tree lookup, no row lock).

Revision ID: 0007_fast_append
Revises: 0006_quality
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0007_fast_append"
down_revision = "0006_quality"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Drop the entry -> batch foreign key on PostgreSQL."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE entry DROP CONSTRAINT IF EXISTS entry_batch_id_fkey")


def downgrade() -> None:
    """The batch record is never downgraded."""
    raise NotImplementedError("the batch record schema is never downgraded")
