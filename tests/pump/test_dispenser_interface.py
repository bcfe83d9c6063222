"""The Dispenser interface in domain verbs (uL, uL/s), run against the Cavro driver over a pty to the pump emulator
and against the in-memory double: what the controller relies on holds for both, so a second pump model is one new
driver of hal.dispenser.base.Dispenser."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from hal.dispenser import CavroPump, DispenseTerminated, Dispenser, VolumeOutOfRange
from hal.dispenser.memory import InMemoryDispenser

STEP_UL = 1000.0 / 3000  # the Cavro's N0 step with a 1,000 uL syringe: volumes agree to one step


@pytest.fixture(params=["cavro", "memory"])
def dispenser(request: pytest.FixtureRequest) -> Dispenser:
    """A reinitialised dispenser with an empty 1,000 uL syringe: the Cavro driver on the emulator's pty, or the
    in-memory double."""
    if request.param == "memory":
        made: Dispenser = InMemoryDispenser(1000.0)
    else:
        world, emulator = request.getfixturevalue("world"), request.getfixturevalue("emulator")
        make_pump: Callable[..., CavroPump] = request.getfixturevalue("make_pump")
        world.faults.clear()
        made = make_pump(emulator.path)
        made.status()  # read away whatever an earlier test left
    made.reinitialise()
    made.empty_to_waste(rate_ul_s=500.0)
    return made


def test_capacity_and_identity(dispenser: Dispenser) -> None:
    assert dispenser.capacity_ul == 1000.0
    assert dispenser.identity()


def test_reinitialised_dispenser_is_ready_and_empty(dispenser: Dispenser) -> None:
    status = dispenser.status()
    assert status.ready and status.error_code == 0
    assert dispenser.volume_in_syringe_ul() == pytest.approx(0.0, abs=STEP_UL)


def test_draw_then_dispense_at_a_rate(dispenser: Dispenser) -> None:
    assert dispenser.draw(600.0, rate_ul_s=400.0) == pytest.approx(600.0, abs=STEP_UL)
    assert dispenser.dispense(250.0, rate_ul_s=300.0) == pytest.approx(250.0, abs=STEP_UL)
    assert dispenser.dispense(100.0) == pytest.approx(100.0, abs=STEP_UL)  # the rate last used
    assert dispenser.volume_in_syringe_ul() == pytest.approx(250.0, abs=2 * STEP_UL)


def test_prime_delivers_like_a_dispense(dispenser: Dispenser) -> None:
    dispenser.draw(300.0, rate_ul_s=400.0)
    assert dispenser.prime(200.0, rate_ul_s=300.0) == pytest.approx(200.0, abs=STEP_UL)


def test_empty_to_waste_leaves_the_syringe_empty(dispenser: Dispenser) -> None:
    dispenser.draw(450.0, rate_ul_s=400.0)
    dispenser.empty_to_waste(rate_ul_s=500.0)
    assert dispenser.volume_in_syringe_ul() == pytest.approx(0.0, abs=STEP_UL)


def test_an_inhibited_dispense_does_not_start(dispenser: Dispenser) -> None:
    dispenser.draw(300.0, rate_ul_s=400.0)
    inhibit = threading.Event()
    inhibit.set()
    with pytest.raises(DispenseTerminated) as info:
        dispenser.dispense(100.0, rate_ul_s=300.0, inhibit=inhibit)
    assert info.value.delivered_ul == 0.0 and info.value.requested_ul == 100.0
    assert dispenser.volume_in_syringe_ul() == pytest.approx(300.0, abs=STEP_UL)


@pytest.mark.parametrize(("action", "kwargs"), [
    ("draw", {"volume_ul": 1200.0, "rate_ul_s": 400.0}),
    ("dispense", {"volume_ul": 50.0}),
])
def test_volumes_that_do_not_fit_are_refused_and_nothing_is_moved(dispenser: Dispenser, action: str,
                                                                    kwargs: dict[str, Any]) -> None:
    with pytest.raises(VolumeOutOfRange):
        getattr(dispenser, action)(**kwargs)
    assert dispenser.volume_in_syringe_ul() == pytest.approx(0.0, abs=STEP_UL)


def test_terminate_when_idle_is_harmless(dispenser: Dispenser) -> None:
    dispenser.terminate()
    dispenser.draw(100.0, rate_ul_s=400.0)
    assert dispenser.dispense(100.0, rate_ul_s=300.0) == pytest.approx(100.0, abs=STEP_UL)


def test_reported_volume_is_the_last_report_and_none_once_the_plunger_may_have_moved(dispenser: Dispenser) -> None:
    """reported_volume_ul answers from the last position report without the line (the fill reads it once a vial
    on the event loop); a command that may move the plunger drops it, so the next answer comes from the pump."""
    dispenser.draw(500.0, rate_ul_s=400.0)
    dispenser.dispense(200.0, rate_ul_s=300.0)  # the dispense reads the position afresh after the move
    assert dispenser.reported_volume_ul() == pytest.approx(300.0, abs=2 * STEP_UL)
    assert dispenser.reported_volume_ul() == pytest.approx(dispenser.volume_in_syringe_ul())
    dispenser.terminate()
    if isinstance(dispenser, CavroPump):
        assert dispenser.reported_volume_ul() is None  # T was sent: the pump is asked again
    assert dispenser.volume_in_syringe_ul() == pytest.approx(300.0, abs=2 * STEP_UL)
