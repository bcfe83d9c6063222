"""An interlock's inhibit latch stops a dispense from being sent at all (checked under the command lock)."""

from __future__ import annotations

import threading
from typing import Callable

import pytest

from hal.dispenser.driver import CavroPump
from hal.dispenser.errors import DispenseTerminated


def test_inhibited_dispense_sends_no_d_command(pump: CavroPump, place_vial: Callable[[int], None],
                                               tx_events: Callable[[CavroPump], list[bytes]]) -> None:
    pump.valve("input")
    pump.aspirate(200.0)
    pump.valve("output")
    place_vial(3)
    inhibit = threading.Event()
    inhibit.set()
    with pytest.raises(DispenseTerminated) as info:
        pump.dispense(100.0, inhibit=inhibit)
    assert info.value.delivered_ul == 0.0
    assert not [tx for tx in tx_events(pump) if b"D" in tx[2:]], "no D command went out"
    assert pump.volume_in_syringe_ul() == pytest.approx(200.0, abs=0.5)
    inhibit.clear()
    assert pump.dispense(100.0, inhibit=inhibit) == pytest.approx(100.0, abs=0.5)
