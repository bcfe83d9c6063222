"""The shared timeline of `--speed max`: time stands still while nobody waits, a wait moves it by exactly its length,
the controller's and the simulator's clocks read the same time from the file, and a watcher never moves it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fillfinish.clock import Clock
from sim.clock import SimClock, Timeline
from sim.runner import Simulator

HANG_GUARD_S = 30.0


@pytest.fixture
def timeline(tmp_path: Path) -> Path:
    path = tmp_path / "timeline"
    Timeline(path, create=True, start=1_000_000.0, rate=2000.0, burst=50.0).close()
    return path


def test_time_stands_still_until_a_wait_moves_it(timeline: Path) -> None:
    sim, ctl = SimClock(timeline=timeline), Clock(timeline=timeline)
    assert sim.now() == ctl.now() == 1_000_000.0
    assert ctl.now() == 1_000_000.0  # nobody waited: no simulated time passed, however long that took
    ctl.sleep(12.5)
    assert sim.now() == ctl.now() == 1_000_012.5
    sim.sleep(100.0)  # beyond the burst: moved in steps, still exactly by its length
    assert ctl.now() == pytest.approx(1_000_112.5)
    assert ctl.speed == sim.speed == 2000.0


def test_driver_pauses_are_simulated_time_on_a_timeline(timeline: Path) -> None:
    clock = Clock(timeline=timeline)
    clock.device_sleep(0.001)  # a driver waits real_s = device_s / speed
    assert clock.now() == pytest.approx(1_000_000.0 + 0.001 * clock.speed)


async def test_a_watcher_waits_for_others_to_move_time(timeline: Path) -> None:
    clock = Clock(timeline=timeline)
    watcher = asyncio.ensure_future(clock.await_passing(30.0))
    await asyncio.sleep(0.05)
    assert not watcher.done() and clock.now() == 1_000_000.0  # waiting does not move time
    await clock.asleep(30.0)
    await asyncio.wait_for(watcher, HANG_GUARD_S)


def test_real_clock_is_unchanged_without_a_timeline() -> None:
    clock = Clock(100.0, epoch=0.0)
    assert clock.timeline is None and clock.speed == 100.0
    assert clock.real_seconds(50.0) == 0.5


def test_the_simulator_writes_its_timeline_into_the_site_config(tmp_path: Path) -> None:
    from fillfinish.config import load_site_config

    sim = Simulator(2000.0, timeline=tmp_path / "tl")
    text = sim.site_config_toml("sqlite:///x.db")
    assert f'timeline = "{tmp_path / "tl"}"' in text
    path = tmp_path / "site.toml"
    path.write_text(text.replace('port = ""', 'port = "/dev/null"'))
    cfg = load_site_config(path)
    controller = Clock(cfg.clock.speed, cfg.clock.epoch, cfg.clock.timeline)
    sim.clock.sleep(5.0)
    assert controller.now() == sim.clock.now()


def test_a_pollers_pause_ends_at_the_announced_wake_up(timeline: Path) -> None:
    sim, ctl = SimClock(timeline=timeline), Clock(timeline=timeline)
    sim.wake(1_000_000.8)  # e.g. the positioner arrives 0.8 s from now
    sim.wake(1_000_003.0)  # a later announcement does not hide the earlier one
    ctl.device_sleep(2.0 / ctl.speed)  # a driver's poll pause of 2 simulated s
    assert ctl.now() == pytest.approx(1_000_000.8)  # ended at the wake-up: the next read sees the change
    ctl.device_sleep(2.0 / ctl.speed)  # that wake-up is spent: the next pause is whole
    assert ctl.now() == pytest.approx(1_000_002.8)


def test_a_machine_wait_passes_a_wake_up_and_spends_it(timeline: Path) -> None:
    sim, ctl = SimClock(timeline=timeline), Clock(timeline=timeline)
    sim.wake(1_000_001.0)
    sim.sleep(5.0)  # a line time or a UV wait lasts its whole length whatever was announced
    assert sim.now() == pytest.approx(1_000_005.0)
    ctl.device_sleep(1.0 / ctl.speed)  # the passed wake-up does not stop a later pause
    assert ctl.now() == pytest.approx(1_000_006.0)


async def test_an_async_pause_ends_at_the_wake_up(timeline: Path) -> None:
    sim, ctl = SimClock(timeline=timeline), Clock(timeline=timeline)
    sim.wake(1_000_000.5)
    await ctl.device_asleep(2.0 / ctl.speed)
    assert ctl.now() == pytest.approx(1_000_000.5)


def test_a_wake_up_in_the_past_is_ignored(timeline: Path) -> None:
    sim, ctl = SimClock(timeline=timeline), Clock(timeline=timeline)
    sim.sleep(1.0)
    sim.wake(1_000_000.5)  # already passed: announcing it changes nothing
    ctl.device_sleep(1.0 / ctl.speed)
    assert ctl.now() == pytest.approx(1_000_002.0)


def test_wake_is_a_no_op_on_a_steady_clock() -> None:
    SimClock(100.0, epoch=0.0).wake(10.0)
    Clock(100.0, epoch=0.0).wake(10.0)


@pytest.mark.parametrize("twin", ["sim", "fillfinish"])
def test_a_writer_killed_mid_write_does_not_stop_the_timeline(timeline: Path, twin: str) -> None:
    """A process killed between the seqlock's two counter writes leaves the counter odd. Readers must not spin for
    ever and the next writer must not wait for ever: a reader that keeps seeing it odd with both locks free writes
    the values back (even again), and a writer, holding the file lock, knows no live writer is half-way."""
    import multiprocessing
    import os
    import struct

    from fillfinish.clock import Timeline as ControllerTimeline

    kind = Timeline if twin == "sim" else ControllerTimeline

    def die_mid_write(path: str) -> None:
        line = kind(path)
        seq = struct.unpack_from("<Q", line._mm, 0)[0]  # noqa: SLF001 - the half-way state a SIGKILL leaves
        struct.pack_into("<Q", line._mm, 0, seq + 1)
        line._mm.flush()  # noqa: SLF001
        os._exit(9)

    for _ in range(2):  # first a reader meets the odd counter, then a writer
        child = multiprocessing.get_context("fork").Process(target=die_mid_write, args=(str(timeline),))
        child.start()
        child.join(HANG_GUARD_S)
        assert child.exitcode == 9
        line = kind(timeline)
        assert struct.unpack_from("<Q", line._mm, 0)[0] % 2 == 1  # noqa: SLF001 - left odd by the dead writer
        if _ == 0:
            assert line.now() == 1_000_000.0  # a reader: repaired, not spinning
        else:
            line.advance(5.0)  # a writer: steps past the odd counter
            assert line.now() == pytest.approx(1_000_005.0)
        assert struct.unpack_from("<Q", line._mm, 0)[0] % 2 == 0  # noqa: SLF001
        line.close()
