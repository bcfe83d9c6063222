"""Users and their audit trail (21 CFR 11.300): `app_user` (mutable state, never deleted) and `user_event` (append-only).

Choice (docs/people.md): `app_user` holds the current state of an account (password hash, role, active, failed
attempts, locked) and allows UPDATE, because lockout counters and password changes are state; it refuses DELETE and
TRUNCATE (ids are never reused) and refuses a change of `username`. Every change is written, in the same transaction,
to `user_event`, which refuses UPDATE, DELETE and TRUNCATE like the batch record tables of 0001.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create app_user and user_event and their database-side guards."""
    op.create_table(
        "app_user",
        sa.Column("user_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("password_set_at", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
    )
    op.create_table(
        "user_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER user_event_no_{action.lower()} BEFORE {action} ON user_event "
                f"BEGIN SELECT RAISE(ABORT, 'fillfinish record is append-only: {action} on user_event refused'); END"
            )
        op.execute(
            "CREATE TRIGGER app_user_no_delete BEFORE DELETE ON app_user "
            "BEGIN SELECT RAISE(ABORT, 'fillfinish users are never deleted: DELETE on app_user refused'); END"
        )
        op.execute(
            "CREATE TRIGGER app_user_no_rename BEFORE UPDATE OF username, user_id ON app_user "
            "WHEN NEW.username IS NOT OLD.username OR NEW.user_id IS NOT OLD.user_id "
            "BEGIN SELECT RAISE(ABORT, 'fillfinish user ids are permanent: rename on app_user refused'); END"
        )
    elif dialect == "postgresql":
        # fillfinish_record_append_only() comes from 0001
        op.execute(
            "CREATE TRIGGER user_event_no_update_delete BEFORE UPDATE OR DELETE ON user_event "
            "FOR EACH ROW EXECUTE FUNCTION fillfinish_record_append_only()"
        )
        op.execute(
            "CREATE TRIGGER user_event_no_truncate BEFORE TRUNCATE ON user_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION fillfinish_record_append_only()"
        )
        op.execute(
            "CREATE FUNCTION fillfinish_user_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' AND NEW.username = OLD.username AND NEW.user_id = OLD.user_id THEN RETURN NEW; END IF; "
            "RAISE EXCEPTION 'fillfinish users are never deleted or renamed: % on % refused', TG_OP, TG_TABLE_NAME "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        op.execute(
            "CREATE TRIGGER app_user_guard BEFORE UPDATE OR DELETE ON app_user "
            "FOR EACH ROW EXECUTE FUNCTION fillfinish_user_guard()"
        )
        op.execute(
            "CREATE TRIGGER app_user_no_truncate BEFORE TRUNCATE ON app_user "
            "FOR EACH STATEMENT EXECUTE FUNCTION fillfinish_record_append_only()"
        )
    else:
        raise RuntimeError(f"the batch record supports sqlite and postgresql, not {dialect}")


def downgrade() -> None:
    """Never downgraded: that would drop the user audit trail."""
    raise NotImplementedError("the batch record schema is never downgraded")
