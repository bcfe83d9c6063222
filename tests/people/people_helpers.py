"""Helpers of the people tests: a settable step clock, passwords, a finished batch with an alarm and a deviation."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from fillfinish.record import RecordStore

PASSWORDS = {"root": "root-pass-123", "olga": "olga-pass-123", "sam": "sam-pass-1234", "quinn": "quinn-pass-12",
             "qiana": "qiana-pass-12"}


from step_clock import StepClock  # noqa: E402,F401 - shared with the other record tests


BATCH_FIELDS: dict[str, Any] = {
    "product": "Human FGF-2, CTG",
    "product_code": "FGF2-CTG-100",
    "recipe_name": "fgf2",
    "recipe_version": "1",
    "recipe_hash": "ab" * 32,
    "recipe_snapshot": '[recipe]\nname = "fgf2"\n',
    "lot": "L-2611-07",
    "planned_vials": 3,
    "operator": "olga",
    "mode": "production",
    "site_config": {"clock": {"speed": 1.0, "epoch": 1764085000.0}},
}


def run_batch(store: RecordStore, *, operator: str = "olga", alarm: bool = True, disposition: bool = True) -> str:
    """A small finished batch the way the controller writes it: run_start, vials, (alarm + deviation), disposition."""
    batch = store.create_batch(**{**BATCH_FIELDS, "operator": operator})
    store.append(batch, "run_start", {"lot": "L-2611-07", "planned_vials": 3, "recipe_hash": "11" * 32,
                                      "signature": {"meaning": "performed", "name": operator}}, operator)
    store.append(batch, "operator", {"command": "Start", "reason": ""}, operator)
    for vial in (1, 2, 3):
        store.append(batch, "vial", {"vial": vial, "status": "accepted", "reason": "in tolerance", "net_g": 0.1}, "controller")
        if vial == 2 and alarm:
            seq = store.append(batch, "alarm", {"severity": "action", "source": "particles",
                                                "message": "0.5 um above action level"}, "monitor").seq
            store.append(batch, "deviation", {"event": "opened", "alarm_entry": seq, "source": "particles",
                                              "message": "0.5 um above action level"}, "monitor")
    store.append(batch, "state", {"from": "Completing", "to": "Complete", "trigger": "StateComplete"}, "controller")
    if disposition:
        store.append(batch, "disposition", {"verdict": "not suitable for cell therapy grade" if alarm else
                                            "suitable for cell therapy grade", "suitable": not alarm,
                                            "reasons": [], "reconciliation": {"planned": 3, "filled": 3},
                                            "proposal": True, "pending": []}, "system")
    return batch


def alarm_seq(store: RecordStore, batch: str) -> int:
    """Seq of the batch's (first) alarm entry."""
    return store.entries(batch, kinds=["alarm"])[0].seq


GUARDS = {
    "sqlite": [f"DROP TRIGGER IF EXISTS {t}_no_{a}" for t in ("batch", "entry", "ledger") for a in ("update", "delete")],
    "postgresql": [f"DROP TRIGGER IF EXISTS {t}_{g} ON {t}" for t in ("batch", "entry", "ledger")
                   for g in ("no_update_delete", "no_truncate")],
}


def tamper(store: RecordStore, sql: str, params: dict[str, Any] | None = None) -> None:
    """Act as an attacker with database access: drop the record's triggers and run `sql`."""
    with store.engine.begin() as conn:
        for statement in GUARDS[store.dialect]:
            conn.exec_driver_sql(statement)
        conn.execute(text(sql), params or {})
