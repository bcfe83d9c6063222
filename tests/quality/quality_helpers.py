"""Helpers of the quality tests: passwords, a finished batch written the way the controller writes it, with a small
viable monitoring plan, and a CLI runner."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from fillfinish.record import RecordStore

PASSWORDS = {"root": "root-pass-123", "olga": "olga-pass-123", "sam": "sam-pass-1234", "quinn": "quinn-pass-123",
             "qiana": "qiana-pass-123", "quentin": "quentin-pass-123"}

RECIPE = """[recipe]
name = "fgf2"
product_name = "Human FGF-2, CTG"
product_code = "FGF2-CTG-100"
version = 1
mode = "production"

[hold_times]
uv_end_to_fill_start_s = 3600.0
tips_sterilised_to_use_s = 14400.0
fill_duration_max_s = 14400.0

[viable_monitoring]
settle_plates = [{ location = "filling needle zone", grade = "A", plates = 1, exposure_s = 14400.0 }]
active_air = []
glove_prints = [{ location = "operator glove", grade = "B" }]
contact_plates = []

[retained_samples]
count = 1
"""

SITE = {"clock": {"speed": 1.0, "epoch": 1764085000.0},
        "quality": {"deviation_prefix": "FFX", "deviation_group_window_s": 600.0},
        "record": {"line_id": "line-7"}}


def new_batch(store: RecordStore, *, operator: str = "olga", mode: str = "production", planned: int = 3) -> str:
    """A batch header with the test recipe and site settings."""
    return store.create_batch(product="Human FGF-2, CTG", product_code="FGF2-CTG-100", recipe_name="fgf2",
                              recipe_version="1", recipe_hash="ab" * 32, recipe_snapshot=RECIPE, lot="L-1",
                              planned_vials=planned, operator=operator, mode=mode, site_config=SITE)


def alarm(store: RecordStore, batch: str, source: str, message: str) -> int:
    """An action alarm and the deviation the controller opens for it; returns the alarm entry's seq."""
    seq = store.append(batch, "alarm", {"severity": "action", "source": source, "message": message}, "monitor").seq
    store.append(batch, "deviation", {"event": "opened", "alarm_entry": seq, "source": source, "message": message},
                 "monitor")
    return seq


def run_batch(store: RecordStore, *, operator: str = "olga", alarms: int = 0, mode: str = "production",
              clock: Any = None, planned: int = 3) -> str:
    """A finished batch as the controller writes it: run_start, vials, alarms (door + excursions), disposition."""
    batch = new_batch(store, operator=operator, mode=mode, planned=planned)
    store.append(batch, "run_start", {"lot": "L-1", "planned_vials": planned, "recipe_hash": "11" * 32,
                                      "signature": {"meaning": "performed", "name": operator}}, operator)
    for vial in range(1, planned + 1):
        store.append(batch, "vial", {"vial": vial, "status": "accepted", "reason": "in tolerance", "net_g": 0.1}, "controller")
        if vial == 1:
            for i in range(alarms):
                alarm(store, batch, ("door", "particles_0_5um", "particles_5um")[i % 3], f"alarm {i + 1}")
    store.append(batch, "retained_sample", {"vials": [planned], "count": 1, "planned": 1, "rule": "last",
                                            "location": "QC store", "retention": "set at QA release", "short": 0}, "controller")
    store.append(batch, "state", {"from": "Completing", "to": "Complete", "trigger": "StateComplete"}, "controller")
    store.append(batch, "disposition", {"verdict": "suitable for cell therapy grade" if not alarms else
                                        "not suitable for cell therapy grade", "suitable": not alarms, "reasons": [],
                                        "reconciliation": {"planned": planned, "filled": planned - 1, "samples": 1},
                                        "proposal": True, "pending": []}, "system")
    return batch


def enter_all_viable(store: RecordStore, users: Any, batch: str, *, cfu: int = 0) -> None:
    """Enter (olga reads) and verify (sam) every planned viable sample of the test plan."""
    from fillfinish.quality import viable

    for sample in ("SP-1", "GP-1"):
        viable.add_result(store, batch, sample, cfu=cfu, incubation_start="2026-11-26T08:00",
                          incubation_end="2026-11-30T08:00", medium_lot="TSA-77", user="olga",
                          password=PASSWORDS["olga"], users=users)
        viable.verify_result(store, batch, sample, user="sam", password=PASSWORDS["sam"], users=users)


def later(clock: Any, seconds: float) -> None:
    """Move the test clock ahead."""
    clock.advance(timedelta(seconds=seconds))


GUARDS = {
    "sqlite": [f"DROP TRIGGER IF EXISTS {t}_no_{a}" for t in ("batch", "entry", "ledger") for a in ("update", "delete")],
    "postgresql": [f"DROP TRIGGER IF EXISTS {t}_{g} ON {t}" for t in ("batch", "entry", "ledger")
                   for g in ("no_update_delete", "no_truncate")],
}


def raw(store: RecordStore, sql: str, params: dict[str, Any] | None = None) -> None:
    """Run SQL directly (no trigger dropped): to show what the guards refuse."""
    with store.engine.begin() as conn:
        conn.execute(text(sql), params or {})
