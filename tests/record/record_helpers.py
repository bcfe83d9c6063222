"""Helpers shared by the record tests: a step clock, batch fields, filling a batch, tampering as an attacker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from fillfinish.record import RecordStore


from step_clock import StepClock  # noqa: E402,F401 - shared with the other record tests


BATCH_FIELDS: dict[str, Any] = {
    "product": "Ranibizumab 10 mg/mL",
    "product_code": "RBZ-10",
    "recipe_name": "ranibizumab",
    "recipe_version": "1.2.0",
    "recipe_hash": "ab" * 32,
    "recipe_snapshot": 'name = "ranibizumab"\nfill_volume_ul = 500.0\n',
    "lot": "L-2611-07",
    "planned_vials": 120,
    "operator": "alice",
    "mode": "production",
    "site_config": {"clock": {"speed": 1.0, "epoch": 1764085000.0}, "site": {"lamp_warn_hours": 7000.0}},
}


def new_batch(store: RecordStore, **overrides: Any) -> str:
    """Create a batch with plausible fields (overridable)."""
    return store.create_batch(**{**BATCH_FIELDS, **overrides})


def fill(store: RecordStore, batch_id: str, n: int, start: int = 0) -> None:
    """Append `n` vial entries."""
    for i in range(start, start + n):
        store.append(batch_id, "vial", {"vial": i + 1, "net_g": 0.5 + i / 1000, "status": "accepted", "reason": "in tolerance"}, "controller")


GUARDS = {
    "sqlite": [f"DROP TRIGGER IF EXISTS {t}_no_{a}" for t in ("batch", "entry", "ledger") for a in ("update", "delete")],
    "postgresql": [
        f"DROP TRIGGER IF EXISTS {t}_{g} ON {t}"
        for t in ("batch", "entry", "ledger")
        for g in ("no_update_delete", "no_truncate")
    ],
}


def tamper(store: RecordStore, *statements: str | tuple[str, dict[str, Any]], params: dict[str, Any] | None = None
           ) -> None:
    """Act as an attacker with database access: drop the append-only triggers, then run raw SQL in one transaction.

    A statement is SQL text (run with `params`) or a (SQL, own params) pair.
    """
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        for sql in GUARDS[store.dialect]:
            conn.exec_driver_sql(sql)
        for statement in statements:
            sql, values = statement if isinstance(statement, tuple) else (statement, params or {})
            conn.execute(text(sql), values)
