"""How the console words values (pure functions of fillfinish/hmi/readable.py)."""

from __future__ import annotations

from fillfinish.hmi.readable import door_text, readable_rows, sparkline, uv_text


def test_door_reads_as_a_person_says_it() -> None:
    assert door_text({"door_closed": 1.0, "door_locked": 1.0}) == "closed, locked"
    assert door_text({"door_closed": 1.0, "door_locked": 0.0}) == "closed, UNLOCKED"
    assert door_text({"door_closed": 0.0, "door_locked": 1.0}) == "OPEN"
    assert door_text({}) is None


def test_rows_have_labels_and_units() -> None:
    rows = {key: (label, text, bad) for key, label, text, bad in readable_rows(
        {"door_closed": 1.0, "door_locked": 1.0, "hepa_fan_running": 0.0, "hepa_dp_pa": 131.24,
         "particles_0_5um_per_m3": 1234.0, "lamp_on": 1.0})}
    assert rows["door"] == ("Door", "closed, locked", False)
    assert rows["hepa_fan_running"] == ("HEPA fan", "STOPPED", True)
    assert rows["hepa_dp_pa"] == ("HEPA differential pressure", "131.2 Pa", False)
    assert rows["particles_0_5um_per_m3"] == ("Particles >= 0.5 um", "1,234 /m3", False)
    assert rows["lamp_on"] == ("UV lamp", "on", False)
    assert "door_closed" not in rows and "door_locked" not in rows


def test_sparkline_is_scaled_to_the_limit() -> None:
    assert sparkline([0, 50, 100], high=100) == "▁▅█"
    assert sparkline([200], high=100) == "█"
    assert sparkline([], high=100) == ""
    assert len(sparkline(range(100), high=None, width=40)) == 40


def test_uv_dose_against_target() -> None:
    assert uv_text(61.5, 120.0, "uv_cycle") == "UV dose: 61.5 / 120.0 mJ/cm2 (51 %) - UV cycle running"
    assert uv_text(0.0, 0.0, "") == "UV dose: 0.0 mJ/cm2"
