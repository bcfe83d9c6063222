"""The pump emulator on its own (LineDevice.feed on a stepped clock): command strings, timing, OEM framing."""

from __future__ import annotations

import pytest

from sim.clock import SimClock
from sim.dispenser import PumpEmulator
from sim.world import World



class SteppedClock(SimClock):
    """A SimClock that moves only when told: sleep() advances simulated time at once (deterministic tests)."""

    def __init__(self) -> None:
        super().__init__(speed=1.0)
        self.t = self.epoch

    def now(self) -> float:
        return self.t

    def sleep(self, sim_seconds: float) -> None:
        self.t += max(0.0, sim_seconds)


@pytest.fixture
def emu() -> PumpEmulator:
    """An emulator fed directly (no pty, no ticker thread), on a world whose clock the test steps."""
    return PumpEmulator(World(SteppedClock()), syringe_ul=1000.0)


def dt(emu: PumpEmulator, text: str, address: str = "1") -> tuple[int, str] | None:
    replies = emu.feed(f"/{address}{text}\r".encode())
    if not replies:
        return None
    (reply,) = replies
    assert reply[:2] == b"/0" and reply.endswith(b"\x03\r\n")
    return reply[2], reply[3:-3].decode()


def settle(emu: PumpEmulator, sim_s: float = 30.0) -> None:
    step = 0.25
    waited = 0.0
    while emu.busy():
        assert waited < sim_s, "emulator stayed busy"
        emu.clock.sleep(step)
        waited += step


def test_chained_string_with_valve_and_plunger_moves(emu: PumpEmulator) -> None:
    assert dt(emu, "ZR") == (0x40, "")
    settle(emu)
    status, _ = dt(emu, "IA3000OD300R")
    assert status == 0x40  # busy: the valve move is running
    settle(emu)
    assert dt(emu, "?") == (0x60, "2700")
    assert dt(emu, "?6") == (0x60, "o")
    assert emu.world.dispensed[-1].volume_ul == pytest.approx(100.0)
    assert dt(emu, "?16")[1] == "2" and dt(emu, "?17")[1] == "2" and dt(emu, "?15")[1] == "1"


def test_moves_take_steps_over_top_speed_on_the_sim_clock(emu: PumpEmulator) -> None:
    dt(emu, "ZR")
    settle(emu)
    dt(emu, "V1000R")
    start = emu.clock.now()
    dt(emu, "P3000R")
    settle(emu)
    elapsed = emu.clock.now() - start
    assert 3.0 <= elapsed <= 3.25  # 3,000 steps at 1,000 pulses/s (settle steps 0.25 s)


def test_reports_and_settings(emu: PumpEmulator) -> None:
    dt(emu, "V2000v100c500L10K5R")
    assert [dt(emu, q)[1] for q in ("?1", "?2", "?3", "?12")] == ["100", "2000", "500", "5"]
    dt(emu, "S11R")
    assert dt(emu, "?2")[1] == "1400"
    assert dt(emu, "&")[1] == dt(emu, "?23")[1] == "XCalibur SIM 1.00"
    assert dt(emu, "Q") == (0x60, "")


def test_case_sensitive_strict_parsing(emu: PumpEmulator) -> None:
    assert dt(emu, "zR")[0] == 0x62  # invalid command, ready
    assert dt(emu, "Q") == (0x60, "")  # reported once, then cleared
    assert dt(emu, "N7R")[0] == 0x63
    assert dt(emu, "A-5R")[0] == 0x63
    assert dt(emu, "AR")[0] == 0x63
    assert dt(emu, "A10RA10R")[0] == 0x64
    assert dt(emu, "Q?")[0] == 0x62
    assert dt(emu, "I3R")[0] == 0x63  # no distribution valve on this pump


def test_moves_before_init_and_range_errors(emu: PumpEmulator) -> None:
    assert dt(emu, "A10R")[0] == 0x67
    assert dt(emu, "IR")[0] == 0x67
    dt(emu, "ZR")
    settle(emu)
    assert dt(emu, "D1R")[0] == 0x63
    assert dt(emu, "P3001R")[0] == 0x63
    dt(emu, "BR")
    settle(emu)
    assert dt(emu, "P10R")[0] == 0x6B


def test_buffer_load_then_r_and_overflow(emu: PumpEmulator) -> None:
    dt(emu, "ZR")
    settle(emu)
    assert dt(emu, "P600") == (0x60, "")
    assert dt(emu, "?10")[1] == "1" and dt(emu, "F")[1] == "1"
    assert dt(emu, "?") == (0x60, "0")
    assert dt(emu, "R")[0] == 0x40
    assert dt(emu, "P10R")[0] == 0x4F  # command overflow while busy
    settle(emu)
    assert dt(emu, "?") == (0x60, "600")
    assert dt(emu, "?10")[1] == "0"


def test_loops_and_delays(emu: PumpEmulator) -> None:
    dt(emu, "ZR")
    settle(emu)
    dt(emu, "V6000gP100M100G3R")
    settle(emu)
    assert dt(emu, "?")[1] == "300"
    dt(emu, "gP10gD5G2G2R")  # nested: (P10, D5, D5) twice
    settle(emu)
    assert dt(emu, "?")[1] == "300"


def test_terminate_stops_plunger_and_drops_the_rest(emu: PumpEmulator) -> None:
    dt(emu, "ZR")
    settle(emu)
    dt(emu, "V100P3000A0R")  # 30 s simulated
    emu.clock.sleep(3.0)
    assert dt(emu, "T")[0] & 0x20
    position = int(dt(emu, "?")[1])
    assert 200 <= position <= 600
    emu.clock.sleep(3.0)
    assert dt(emu, "?")[1] == str(position)  # stopped, and A0 was dropped
    assert emu.reservoir_drawn_ul == pytest.approx(position / 3.0)


def test_init_expels_the_contents_through_the_output(emu: PumpEmulator) -> None:
    dt(emu, "ZR")
    settle(emu)
    dt(emu, "P600R")
    settle(emu)
    dt(emu, "ZR")
    settle(emu)
    assert emu.world.dispensed[-1].volume_ul == pytest.approx(200.0)
    assert dt(emu, "?")[1] == "0"


def test_resolution_n1(emu: PumpEmulator) -> None:
    dt(emu, "ZR")
    settle(emu)
    dt(emu, "N1P800R")
    settle(emu)
    assert dt(emu, "?")[1] == "800"
    assert emu.contents_ul == pytest.approx(800 * 1000.0 / 24000)
    dt(emu, "N0R")
    assert dt(emu, "?")[1] == "100"


def test_other_addresses_and_noise_get_no_answer(emu: PumpEmulator) -> None:
    assert dt(emu, "Q", address="2") is None
    assert dt(emu, "Q", address="A") is None  # a group address
    assert emu.feed(b"\x00\xff") == []
    assert dt(emu, "Q") == (0x60, "")
    assert emu.feed(b"/1") == [] and len(emu.feed(b"Q\r")) == 1  # split across reads


def oem(n: int, text: str, repeat: bool = False, address: str = "1") -> bytes:
    body = b"\x02" + address.encode() + bytes([0x30 | (8 if repeat else 0) | n]) + text.encode() + b"\x03"
    check = 0
    for b in body:
        check ^= b
    return body + bytes([check])


def test_oem_framing_repeat_and_bad_checksum(emu: PumpEmulator) -> None:
    assert emu.feed(b"\xff" + oem(1, "ZR")) == [b"\x020@\x03" + bytes([0x02 ^ 0x30 ^ 0x40 ^ 0x03])]
    assert emu.mode == "oem"
    settle(emu)
    (first,) = emu.feed(oem(2, "P300R"))
    (again,) = emu.feed(oem(2, "P300R", repeat=True))
    assert again == first  # answered again, not executed again
    settle(emu)
    (pos,) = emu.feed(oem(3, "?"))
    assert pos[3:-2] == b"300"
    damaged = bytearray(oem(4, "P300R"))
    damaged[-1] ^= 0x55
    assert emu.feed(bytes(damaged)) == []
    assert emu.feed(b"/1Q\r") == []  # DT after OEM was detected: ignored


def test_garbled_fault_corrupts_one_answer(emu: PumpEmulator) -> None:
    emu.world.faults.inject("pump.garbled")
    (bad,) = emu.feed(b"/1Q\r")
    assert bad[2] & 0x80
    assert dt(emu, "Q") == (0x60, "")
