"""SQLite: refuse INSERT OR REPLACE of an existing row (a REPLACE deletes the old row without firing the DELETE
triggers, so the append-only guards of 0001/0002 did not see it). BEFORE INSERT triggers reject an insert whose key
already exists; a plain duplicate INSERT fails as before (an integrity error). PostgreSQL needs nothing: its upsert is
an UPDATE, which the existing triggers refuse.

Revision ID: 0004_safety
Revises: 0003_recordcore
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0004_safety"
down_revision = "0003_recordcore"
branch_labels = None
depends_on = None

# table -> the key column sets that REPLACE could collide on
KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "batch": (("batch_id",),),
    "entry": (("id",), ("global_seq",), ("batch_id", "seq")),
    "ledger": (("global_seq",), ("batch_id", "seq")),
    "app_user": (("user_id",), ("username",)),
    "user_event": (("id",),),
}


def upgrade() -> None:
    """One BEFORE INSERT trigger per table and key (SQLite only)."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, keys in KEYS.items():
        for columns in keys:
            match = " AND ".join(f"{c} = NEW.{c}" for c in columns)
            name = f"{table}_no_replace_{'_'.join(columns)}"
            op.execute(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
                f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {match}) "
                f"BEGIN SELECT RAISE(ABORT, 'fillfinish record is append-only: insert over an existing "
                f"{table} row ({', '.join(columns)}) refused'); END"
            )


def downgrade() -> None:
    """The batch record is never downgraded: that would drop GMP guards."""
    raise NotImplementedError("the batch record schema is never downgraded")
