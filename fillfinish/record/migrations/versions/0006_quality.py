"""Quality: a narrowly controlled purge path for batch records past their retention date.

`purge_permit` (append-only) names each batch the purge service removed and the hash of its signed tombstone. The
DELETE guards of `batch` and `entry` are replaced by guards that refuse a DELETE unless a permit for that batch exists
(inserted by fillfinish.quality.purge in the same transaction, after the signed tombstone was committed to the
REG-PURGE registry); UPDATE and TRUNCATE stay refused, and the `ledger` stays fully append-only, so `record verify`
still sees every purged row's hash (docs/quality.md, decision 0010).

Revision ID: 0006_quality
Revises: 0004_safety
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_quality"
down_revision = "0004_safety"
branch_labels = None
depends_on = None

PURGEABLE = ("batch", "entry")


def upgrade() -> None:
    """Create purge_permit and replace the DELETE guards of batch and entry by permit-checking ones."""
    op.create_table(
        "purge_permit",
        sa.Column("batch_id", sa.String(32), primary_key=True),
        sa.Column("tombstone_hash", sa.String(64), nullable=False),
        sa.Column("permitted_at", sa.String(32), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER purge_permit_no_{action.lower()} BEFORE {action} ON purge_permit "
                f"BEGIN SELECT RAISE(ABORT, 'fillfinish record is append-only: {action} on purge_permit refused'); END"
            )
        for table in PURGEABLE:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                f"WHEN NOT EXISTS (SELECT 1 FROM purge_permit WHERE purge_permit.batch_id = OLD.batch_id) "
                f"BEGIN SELECT RAISE(ABORT, 'fillfinish record is append-only: DELETE on {table} refused "
                "(only the purge service removes a batch past its retention date)'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE TRIGGER purge_permit_no_update_delete BEFORE UPDATE OR DELETE ON purge_permit "
            "FOR EACH ROW EXECUTE FUNCTION fillfinish_record_append_only()"
        )
        op.execute(
            "CREATE TRIGGER purge_permit_no_truncate BEFORE TRUNCATE ON purge_permit "
            "FOR EACH STATEMENT EXECUTE FUNCTION fillfinish_record_append_only()"
        )
        op.execute(
            "CREATE FUNCTION fillfinish_record_purge_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM purge_permit p WHERE p.batch_id = OLD.batch_id) THEN "
            "RETURN OLD; END IF; "
            "RAISE EXCEPTION 'fillfinish record is append-only: % on % refused', TG_OP, TG_TABLE_NAME "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in PURGEABLE:  # same trigger name as 0001, so tooling that knows the guards still finds them
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION fillfinish_record_purge_guard()"
            )
    else:
        raise RuntimeError(f"the batch record supports sqlite and postgresql, not {dialect}")


def downgrade() -> None:
    """Never downgraded: that would drop the purge trail."""
    raise NotImplementedError("the batch record schema is never downgraded")
