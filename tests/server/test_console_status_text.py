"""How the console words one decoded status and which commands it asks a signature for (pure functions of
fillfinish/hmi/status_text.py, limits.py and console_commands.py, tested without a screen)."""

from __future__ import annotations

from collections import deque

from fillfinish.hmi.console_commands import signature_meaning
from fillfinish.hmi.limits import DEFAULT_LIMITS, EnvLimit, apply_recipe_limits
from fillfinish.hmi.readable import TRENDED
from fillfinish.hmi.status_text import (
    STALE_AFTER_S,
    add_to_trends,
    alarm_rows,
    alarm_style,
    banner,
    counts,
    environment_rows,
    info_lines,
    state_class,
    state_name,
    trend_text,
    uv_progress,
)


def test_banner_warns_on_a_status_error_or_a_stale_heartbeat() -> None:
    assert banner({"StatusError": "boom"}, 0.0, "connected") == (
        "CONTROLLER STATUS ERROR: boom (values may be stale)", "warn")
    text, css = banner({}, STALE_AFTER_S + 1, "connected")
    assert css == "warn" and text.startswith("CONTROLLER NOT UPDATING for 4 s")
    assert banner({}, 0.5, "connected to x as op1") == ("connected to x as op1", "ok")


def test_state_names_and_colours() -> None:
    assert state_name({"StateCurrentName": "Execute"}) == "Execute"
    assert state_name({"StateCurrent": 7}) == "State 7"
    assert state_class("Execute") == "state-execute" and state_class("State 7") == "state-unknown"


def test_batch_lines_counts_and_uv() -> None:
    lines = info_lines({"Phase": "uv_decontamination", "StopReason": "door", "HoldCause": "alarm 3"})
    assert lines["#phase"] == "Phase:       uv decontamination"
    assert lines["#stop-reason"] == "Stop reason: door   (held by: alarm 3)"
    assert lines["#batch"] == "Batch:       -"
    assert counts({"PlannedCount": 10, "ProdProcessedCount": 12, "ProdDefectiveCount": 1}) == (
        10, 10, "filled 12 / 10 planned   rejected 1")
    assert counts({})[:2] == (1, 0)
    total, done, _ = uv_progress({"UvDose_mJ_cm2": 5.0, "UvDoseTarget_mJ_cm2": 0.0})
    assert (total, done) == (1.0, 1.0)


def test_recipe_limits_replace_the_defaults_and_keep_units() -> None:
    limits = dict(DEFAULT_LIMITS)
    apply_recipe_limits(limits, {"particles_0_5um_per_m3": [None, 100.0], "hepa_dp_pa": [80.0, 160.0]})
    assert limits["particles_0_5um_per_m3"] == EnvLimit(None, 100.0, "/m3", "recipe")
    assert limits["hepa_dp_pa"].describe() == "80-160 Pa"
    rows = {r[0]: r for r in environment_rows({"particles_0_5um_per_m3": 150.0, "hepa_dp_pa": 120.0}, limits)}
    assert str(rows["particles_0_5um_per_m3"][4]) == "OUT" and str(rows["hepa_dp_pa"][4]) == "ok"


def test_trends_grow_and_are_drawn_against_their_limit() -> None:
    trends = {k: deque[float](maxlen=5) for k in TRENDED}
    for value in (10.0, 20.0):
        add_to_trends(trends, {"hepa_dp_pa": value})
    assert list(trends["hepa_dp_pa"]) == [10.0, 20.0] and not trends["particles_5um_per_m3"]
    text = trend_text({"hepa_dp_pa": 20.0}, trends, DEFAULT_LIMITS)
    assert text.splitlines()[0] == "HEPA differential pressure: 20.0 Pa (no limit)"
    assert trend_text({}, trends, DEFAULT_LIMITS) == "trends: no readings yet"


def test_alarm_rows_and_their_emphasis() -> None:
    rows = alarm_rows([{"alarm_id": 3, "severity": "interlock", "source": "door", "message": "open",
                        "time": "2026-11-30T10:00:00.123+00:00"},
                       {"alarm_id": 4, "severity": "warning", "acknowledged": True, "acknowledged_by": "op1"}],
                      [{"event": "login_failed", "user": "x", "detail": "bad password"}])
    assert rows[0] == (3, "UNACK", "interlock", "door", "open", "2026-11-30 10:00:00")
    assert rows[1][1] == "by op1" and rows[2][:2] == ("S1", "-")
    assert [alarm_style(r) for r in rows] == ["bold red", "", "bold red"]


def test_the_console_asks_a_signature_where_the_record_needs_one() -> None:
    assert signature_meaning("Abort", None) and signature_meaning("Complete", {})
    assert signature_meaning("Unhold", {"HoldCause": "alarm 3"})
    assert signature_meaning("Unhold", {"HoldCause": ""}) is None and signature_meaning("Hold", None) is None
