"""Per-line keyed ledgers (decision 0012): line_id, line_seq, key_id and mac on every ledger row.

Existing rows become the unkeyed start of line "line-1" (line_seq = global_seq, no MAC; verify checks them with the
old global formula). On PostgreSQL a sequence hands out global_seq without a lock across lines. The ledger stays
append-only: its guards are lifted only for the back-fill inside this migration and put back as in 0001.

Revision ID: 0003_recordcore
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_recordcore"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the per-line columns, back-fill the existing chain as line-1, index (line_id, line_seq)."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS ledger_no_update")
    else:
        op.execute("ALTER TABLE ledger DISABLE TRIGGER ledger_no_update_delete")
    op.add_column("ledger", sa.Column("line_id", sa.String(32), nullable=False, server_default="line-1"))
    op.add_column("ledger", sa.Column("line_seq", sa.Integer(), nullable=True))
    op.add_column("ledger", sa.Column("key_id", sa.String(16), nullable=True))
    op.add_column("ledger", sa.Column("mac", sa.String(64), nullable=True))
    op.execute("UPDATE ledger SET line_seq = global_seq")
    op.create_index("uq_ledger_line_seq", "ledger", ["line_id", "line_seq"], unique=True)
    if dialect == "sqlite":
        op.execute("CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger "
                   "BEGIN SELECT RAISE(ABORT, 'fillfinish record is append-only: UPDATE on ledger refused'); END")
    else:
        op.execute("ALTER TABLE ledger ENABLE TRIGGER ledger_no_update_delete")
        op.execute("CREATE SEQUENCE ledger_global_seq")
        op.execute("SELECT setval('ledger_global_seq', COALESCE((SELECT MAX(global_seq) FROM ledger), 0) + 1, false)")


def downgrade() -> None:
    """The batch record is never downgraded."""
    raise NotImplementedError("the batch record schema is never downgraded")
