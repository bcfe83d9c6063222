"""Fixtures of the export tests.

Records written by the real controller on the simulator (tests/fixtures/record.db, made by
scripts/make_fixture_record.py and copied per test): `clean_record` ran as planned and was released by QA;
`controller_record` had the enclosure door opened during the fill (alarms, two deviations worked through 8D and closed,
a hold, growth on a grade A settle plate) and was rejected by QA; `aps_record` is a media fill with its outcome.

`full_record` is written directly with RecordStore: it has one of every exception kind (alarm + ack + clear,
deviation, rejected vial, failed line check, operator Hold/Unhold, refused command, interlock, exception, safe state,
recovery), which a short simulator batch cannot all produce, to test the exceptions list kind by kind.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from fillfinish.record import RecordStore

RECIPE = """[recipe]
name = "fgf2"
product_name = "Human FGF-2, CTG"
product_code = "FGF2-CTG-100"
version = 1

[fill]
fill_volume_ul = 100.0
density_g_ml = 1.0
tolerance_percent = 2.0

[uv]
target_dose_mj_cm2 = 300.0
min_irradiance_mw_cm2 = 0.30

[tips]
uv_target_dose_mj_cm2 = 200.0

[hold_times]
uv_end_to_fill_start_s = 3600.0
tips_sterilised_to_use_s = 14400.0
fill_duration_max_s = 14400.0

[environment]
particles_0_5um_alert_per_m3 = 1760.0
particles_0_5um_action_per_m3 = 3520.0
particles_5um_alert_per_m3 = 14.0
particles_5um_action_per_m3 = 29.0
min_sample_flow_l_min = 28.3
"""

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class Clock:
    """Record clock: 30 s per entry by default; `skip(s)` jumps ahead (to give holds a duration)."""

    def __init__(self) -> None:
        """Start at T0."""
        self.t = T0
        self.step = timedelta(seconds=30)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """The next entry time."""
        with self._lock:
            self.t += self.step
            return self.t

    def skip(self, seconds: float) -> None:
        """Move the clock ahead."""
        self.t += timedelta(seconds=seconds)


def new_batch(store: RecordStore, planned: int = 6, operator: str = "alice") -> str:
    """A batch header like the demo's."""
    return store.create_batch(
        product="Human FGF-2, CTG", product_code="FGF2-CTG-100", recipe_name="fgf2", recipe_version="1",
        recipe_hash="11" * 32, recipe_snapshot=RECIPE, lot="L-2611-07", planned_vials=planned, operator=operator,
        mode="production", site_config={"clock": {"speed": 1.0, "epoch": 1764085000.0}},
    )


def _state(store: RecordStore, b: str, frm: str, to: str, actor: str = "system", reason: str = "",
           trigger: str = "StateComplete") -> None:
    """A PackML state entry."""
    store.append(b, "state", {"from": frm, "to": to, "trigger": trigger, "reason": reason}, actor)


def run_batch(store: RecordStore, clock: Clock, *, exceptions: bool, planned: int = 6) -> str:
    """Write a whole batch: start, line checks, UV cycle, tips, fill with check-weighing, end, disposition."""
    b = new_batch(store, planned)
    a = lambda kind, data, actor="system": store.append(b, kind, data, actor)  # noqa: E731
    t = 1_795_000_000.0
    a("run_start", {"lot": "L-2611-07", "planned_vials": planned, "recipe_hash": "11" * 32,
                    "signature": {"meaning": "performed", "name": "alice"}}, "alice")
    _state(store, b, "Stopped", "Resetting", "alice", "new batch", "Reset")
    _state(store, b, "Resetting", "Idle")
    _state(store, b, "Idle", "Starting", "alice", "start batch", "Start")
    a("phase", {"event": "start", "phase": "line_checks"})
    for check in ("plc_connected", "door_closed", "environment"):
        ok = not (exceptions and check == "door_closed")
        a("line_check", {"check": check, "ok": ok, "detail": "fine" if ok else "door open"})
    _state(store, b, "Starting", "Execute")
    a("phase", {"event": "done", "phase": "line_checks"})
    a("phase", {"event": "start", "phase": "uv_cycle"})
    a("uv_start", {"cycle_id": "UV-1", "step": "uv_cycle", "sensor": "uv_ref_mw_cm2", "target_dose_mj_cm2": 300.0,
                   "lamp_id": "UVC-7", "lamp_hours": 1500.0, "lamp_switch_count": 420})
    dose = 0.0
    for irr in (0.0, 0.7, 1.0, 1.1, 1.15):
        dose += irr * 60
        a("measurement", {"signal": "uv_ref_mw_cm2", "cycle_id": "UV-1", "irradiance_mw_cm2": irr,
                          "dose_mj_cm2": round(dose, 2)})
        a("measurement", {"signal": "particles", "seq": len(str(dose)), "per_m3_0_5um": 35.0 + irr * 100,
                          "per_m3_5um": 0.0, "flow_l_min": 28.6, "time": t}, "monitor")
    a("uv_cycle", {"cycle_id": "UV-1", "step": "uv_cycle", "sensor": "uv_ref_mw_cm2", "dose_mj_cm2": 300.4,
                   "target_dose_mj_cm2": 300.0, "min_irradiance_mw_cm2": 1.1, "start": t + 60, "end": t + 400,
                   "lamp_id": "UVC-7", "lamp_hours": 1500.1, "lamp_switch_count": 420})
    a("phase", {"event": "done", "phase": "uv_cycle"})
    a("phase", {"event": "start", "phase": "tip_sterilisation"})
    a("tip_step", {"method": "presterilised_lot", "lot": "TL-1", "expiry": "2027-11-25",
                   "sterilisation_cycle_id": "EO-118"})
    a("uv_start", {"cycle_id": "TIP-1", "step": "tip_uv", "sensor": "uv_tip_mw_cm2", "target_dose_mj_cm2": 200.0,
                   "lamp_id": "UVC-T1", "lamp_hours": 300.0, "lamp_switch_count": 80})
    a("measurement", {"signal": "uv_tip_mw_cm2", "cycle_id": "TIP-1", "irradiance_mw_cm2": 0.8, "dose_mj_cm2": 120.0})
    a("uv_cycle", {"cycle_id": "TIP-1", "step": "tip_uv", "sensor": "uv_tip_mw_cm2", "dose_mj_cm2": 200.1,
                   "target_dose_mj_cm2": 200.0, "min_irradiance_mw_cm2": 0.8, "start": t + 400, "end": t + 700,
                   "lamp_id": "UVC-T1", "lamp_hours": 300.1, "lamp_switch_count": 80})
    a("phase", {"event": "done", "phase": "tip_sterilisation"})
    a("phase", {"event": "start", "phase": "fill"})
    if exceptions:
        alarm = a("alarm", {"severity": "action", "source": "particles_0_5um", "value": 4100.0, "limit": 3520.0,
                            "message": "particles >=0.5 um 4100/m3 at or above action limit 3520/m3"}, "monitor")
        a("measurement", {"signal": "particles", "seq": 99, "per_m3_0_5um": 4100.0, "per_m3_5um": 31.0,
                          "flow_l_min": 28.6, "time": t}, "monitor")
        a("deviation", {"event": "opened", "alarm_entry": alarm.seq, "source": "particles_0_5um",
                        "message": "particles >=0.5 um 4100/m3 at or above action limit 3520/m3", "phase": "fill",
                        "state": "Execute"}, "monitor")
        _state(store, b, "Execute", "Holding", "monitor", "particles above the action limit", "Hold")
        _state(store, b, "Holding", "Held")
        a("alarm_ack", {"alarm_id": 1, "source": "particles_0_5um"}, "bob")
        clock.skip(600)
        a("alarm_clear", {"source": "particles_0_5um"}, "monitor")
        a("command_refused", {"command": "Start", "state": "Held", "reason": "Start is not allowed in Held"}, "bob")
        a("operator", {"command": "Unhold", "reason": "counts back below the alert limit"}, "bob")
        _state(store, b, "Held", "Unholding", "bob", "resume", "Unhold")
        _state(store, b, "Unholding", "Execute")
        a("operator", {"command": "Hold", "reason": "check the stopper bowl"}, "carol")
        _state(store, b, "Execute", "Holding", "carol", "check the stopper bowl", "Hold")
        _state(store, b, "Holding", "Held")
        clock.skip(300)
        a("operator", {"command": "Unhold", "reason": "bowl fine"}, "carol")
        _state(store, b, "Held", "Unholding", "carol", "resume", "Unhold")
        _state(store, b, "Unholding", "Execute")
        a("alarm", {"severity": "interlock", "source": "door", "message": "enclosure door opened"}, "monitor")
        a("safe_state", {"action": "lamp_off", "reason": "enclosure door opened"})
        a("exception", {"message": "balance did not settle within 10 s", "phase": "fill"})
        a("recovery", {"unclean_shutdown": True, "state_before": "Execute", "last_seq": 40, "gap_s": 42.0,
                       "last_time": "2026-11-25T10:00:00+00:00", "restart_time": t + 842,
                       "uncertain_vial": None})
    for vial in range(1, planned + 1):
        weighed = vial in (1, 3, planned) or (exceptions and vial == 2)
        net = 0.1 if not (exceptions and vial == 2) else 0.0931
        status = "rejected" if exceptions and vial == 2 else "accepted"
        intent = a("intent", {"action": "dispense", "vial": vial, "volume_ul": 100.0})
        a("outcome", {"action": "dispense", "intent": intent.seq, "ok": True, "vial": vial, "delivered_ul": 100.0})
        a("vial", {"vial": vial, "status": status, "weighed": weighed, "volume_ul": 100.0,
                   "net_g": net if weighed else None, "expected_g": 0.1, "tolerance_g": 0.002,
                   "reason": "net weight out of tolerance" if status == "rejected" else ""})
    a("phase", {"event": "done", "phase": "fill"})
    rejected = 1 if exceptions else 0
    alarm_seq = alarm.seq if exceptions else 0
    rec = {"planned": planned, "filled": planned - rejected, "rejected": rejected, "uncertain": 0, "samples": 0,
           "unaccounted": 0}
    a("reconciliation", rec)
    _state(store, b, "Execute", "Completing")
    _state(store, b, "Completing", "Complete")
    reasons = [{"reason": "environmental excursion: particles", "entries": [alarm_seq]}] if exceptions else []
    a("disposition", {"verdict": "not suitable for cell therapy grade" if exceptions else
                      "suitable for cell therapy grade", "suitable": not exceptions, "reasons": reasons,
                      "reconciliation": rec, "proposal": True, "pending": ["QA review and release"]})
    if exceptions:
        a("signature", proved_signature(store, b, "dana", "Dana QA", "reviewed"), "dana")
    return b


def proved_signature(store: RecordStore, batch: str, user: str, name: str, meaning: str) -> dict[str, object]:
    """The data of a valid signature entry of `user` on the batch's head, with its proof under the site key, as
    fillfinish.people.signatures.sign writes it after the password check (decision 0012)."""
    from fillfinish.record.chain import format_ts
    from fillfinish.record.sitekey import entry_signature_message

    head = store.last_entry(batch)
    signed_hash, signed_seq = (head.hash, head.seq) if head else (store.batch(batch).header_hash, 0)
    key = store.site_key(create=True)
    assert key is not None
    signed_at = format_ts(store.record_time())
    proof = key.mac(entry_signature_message(batch_id=batch, signed_hash=signed_hash, signed_seq=signed_seq,
                                            user_id=user, meaning=meaning, signed_at=signed_at))
    return {"name": name, "user_id": user, "role": "qa", "meaning": meaning, "signed_hash": signed_hash,
            "signed_seq": signed_seq, "reason": "", "signed_at": signed_at, "key_id": key.fingerprint, "proof": proof}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite record URL."""
    return f"sqlite:///{tmp_path / 'record.db'}"


@pytest.fixture
def clock() -> Clock:
    """The record clock of a test."""
    return Clock()


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[RecordStore]:
    """An open record store on the test clock, closed after the test."""
    record = RecordStore(db_url, now=clock)
    yield record
    record.close()


@pytest.fixture
def full_record(store: RecordStore, clock: Clock) -> tuple[RecordStore, str]:
    """(store, batch id) of a batch with every kind of exception."""
    return store, run_batch(store, clock, exceptions=True)


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "record.db"


@pytest.fixture
def fixture_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """URL of a fresh copy of the controller-written fixture record (tests/fixtures/record.db), with a copy of the
    test-only site key it was keyed with (tests/fixtures/record.sitekey) as $FILLFINISH_SITE_KEY."""
    copy = tmp_path / "fixture.db"
    shutil.copyfile(FIXTURE, copy)
    key = tmp_path / "fixture.sitekey"
    shutil.copyfile(FIXTURE.with_suffix(".sitekey"), key)
    key.chmod(0o600)
    monkeypatch.setenv("FILLFINISH_SITE_KEY", str(key))
    return f"sqlite:///{copy}"


@pytest.fixture
def fixture_store(fixture_url: str) -> Iterator[RecordStore]:
    """The fixture record copy, open."""
    record = RecordStore(fixture_url, create=False)
    yield record
    record.close()


def _by_lot(store: RecordStore, lot: str) -> str:
    """The id of the fixture batch with lot `lot`."""
    return next(h.batch_id for h in store.batches() if h.lot == lot)


@pytest.fixture
def clean_record(fixture_store: RecordStore) -> tuple[RecordStore, str]:
    """(store, batch id) of a controller batch that ran as planned, viable results all 0 CFU, released by QA."""
    return fixture_store, _by_lot(fixture_store, "L-FIX-CLEAN")


@pytest.fixture
def controller_record(fixture_store: RecordStore) -> tuple[RecordStore, str]:
    """(store, batch id) of a controller batch with a door opening during the fill, 8D deviations, grade A growth,
    rejected by QA."""
    return fixture_store, _by_lot(fixture_store, "L-FIX-FULL")


@pytest.fixture
def aps_record(fixture_store: RecordStore) -> tuple[RecordStore, str]:
    """(store, batch id) of a controller media fill with its (failed) outcome."""
    return fixture_store, _by_lot(fixture_store, "L-FIX-APS")


def _tamper(store: RecordStore, sql: str, **params: Any) -> None:
    """Change the record as an attacker would (drop the append-only triggers, run raw SQL)."""
    with store.engine.begin() as conn:
        for table in ("batch", "entry", "ledger"):
            for action in ("update", "delete"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
        conn.execute(text(sql), params)


@pytest.fixture
def tamper() -> Callable[..., None]:
    """tamper(store, sql, **params): edit the record with raw SQL past its append-only guards."""
    return _tamper
