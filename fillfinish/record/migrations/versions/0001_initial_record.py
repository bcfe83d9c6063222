"""Initial batch record schema: batch, entry, ledger tables and the triggers that refuse UPDATE/DELETE/TRUNCATE.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GUARDED_TABLES = ("batch", "entry", "ledger")


def upgrade() -> None:
    """Create the three append-only tables and their database-side guards."""
    op.create_table(
        "batch",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("product", sa.Text(), nullable=False),
        sa.Column("product_code", sa.Text(), nullable=False),
        sa.Column("recipe_name", sa.Text(), nullable=False),
        sa.Column("recipe_version", sa.Text(), nullable=False),
        sa.Column("recipe_hash", sa.String(64), nullable=False),
        sa.Column("recipe_snapshot", sa.Text(), nullable=False),
        sa.Column("lot", sa.Text(), nullable=False),
        sa.Column("planned_vials", sa.Integer(), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("site_config", sa.Text(), nullable=False),
        sa.Column("header_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "entry",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(32), sa.ForeignKey("batch.batch_id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("global_seq", sa.Integer(), nullable=False, unique=True),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("batch_id", "seq", name="uq_entry_batch_seq"),
    )
    op.create_table(
        "ledger",
        sa.Column("global_seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("record_hash", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("batch_id", "seq", name="uq_ledger_batch_seq"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in GUARDED_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'fillfinish record is append-only: {action} on {table} refused'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION fillfinish_record_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'fillfinish record is append-only: % on % refused', TG_OP, TG_TABLE_NAME "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in GUARDED_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION fillfinish_record_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION fillfinish_record_append_only()"
            )
    else:
        raise RuntimeError(f"the batch record supports sqlite and postgresql, not {dialect}")


def downgrade() -> None:
    """The batch record is never downgraded: that would drop GMP records."""
    raise NotImplementedError("the batch record schema is never downgraded")
