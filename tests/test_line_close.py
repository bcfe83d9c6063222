"""Line.close: the serial ports are closed whatever cancels the clean-up (stress s17: a cancel during the close left
the pump's port locked, and the next `batch recover` could not open it to make the line safe)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from fillfinish.line import Line


class Port:
    """A device whose close() is seen from the test; `gate` holds the close until the test lets it go."""

    def __init__(self, name: str, closed: list[str], all_closed: threading.Event, gate: threading.Event) -> None:
        self.name, self.closed, self.all_closed, self.gate = name, closed, all_closed, gate

    def close(self) -> None:
        self.gate.wait(30)  # hang guard only: the test opens the gate
        self.closed.append(self.name)
        if len(self.closed) == 2:
            self.all_closed.set()


class Guard:
    async def release(self) -> None:
        return None


class SlowPlc:
    """A PLC session whose close waits until cancelled (the moment the first cancel lands)."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()

    async def close(self) -> None:
        self.closing.set()
        await asyncio.Event().wait()


class QuickPlc:
    async def close(self) -> None:
        return None


def bare_line(closed: list[str], all_closed: threading.Event, gate: threading.Event) -> tuple[Line, SlowPlc]:
    line = Line.__new__(Line)  # no site config: only what close() touches
    plc = SlowPlc()
    line.guard, line.plc = Guard(), plc  # type: ignore[assignment]
    line.pump = Port("pump", closed, all_closed, gate)  # type: ignore[assignment]
    line.balance = Port("balance", closed, all_closed, gate)  # type: ignore[assignment]
    return line, plc


async def test_a_close_cancelled_twice_still_closes_both_ports() -> None:
    closed: list[str] = []
    all_closed, gate = threading.Event(), threading.Event()
    line, plc = bare_line(closed, all_closed, gate)
    task = asyncio.create_task(line.close())
    await plc.closing.wait()
    task.cancel()  # lands in the PLC's close
    await asyncio.sleep(0)
    task.cancel()  # and again, while the ports are being closed
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    assert await asyncio.to_thread(all_closed.wait, 30), f"ports left open: closed only {closed}"
    assert sorted(closed) == ["balance", "pump"]


async def test_a_close_waits_for_its_ports() -> None:
    closed: list[str] = []
    all_closed, gate = threading.Event(), threading.Event()
    line, _ = bare_line(closed, all_closed, gate)
    line.plc = QuickPlc()  # type: ignore[assignment]
    task = asyncio.create_task(line.close())
    await asyncio.sleep(0)
    assert not task.done()  # the ports are not closed yet
    gate.set()
    await task
    assert sorted(closed) == ["balance", "pump"]


async def test_run_in_own_thread_hands_over_the_error_and_survives_a_cancelled_wait() -> None:
    from hal.transport.tasks import run_in_own_thread

    def fail() -> None:
        raise OSError("port gone")

    with pytest.raises(OSError, match="port gone"):
        await run_in_own_thread(fail, "test-fail")
    ran, gate = threading.Event(), threading.Event()

    def slow() -> None:
        gate.wait(30)  # hang guard only
        ran.set()

    waiter = asyncio.ensure_future(run_in_own_thread(slow, "test-slow"))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    assert await asyncio.to_thread(ran.wait, 30)
