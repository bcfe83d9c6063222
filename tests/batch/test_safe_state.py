"""The safe-state component: the pump's T leaves before anything is written, record writes wait for the safety
actions in flight, and every lamp off / terminate / positioner stop is recorded one way (a safe_state entry)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fillfinish.batch.run_state import RunState
from fillfinish.batch.safe_state import SafeState
from hal.dispenser.memory import InMemoryDispenser


class Journal:
    """Calls to the devices and the record, in the order they happened."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.failed: str | None = None

    def post(self, kind: str, actor: str = "system", /, **data: Any) -> None:
        self.events.append((kind, data))


class Pump(InMemoryDispenser):
    def __init__(self, journal: Journal) -> None:
        super().__init__(1000.0)
        self.journal = journal
        self.release = threading.Event()

    def terminate(self) -> None:
        self.journal.events.append(("T", None))
        self.release.wait(5)


class Plc:
    def __init__(self, journal: Journal, lamp_stays_on: bool = False, broken: bool = False) -> None:
        self.journal, self.lamp_stays_on, self.broken = journal, lamp_stays_on, broken

    async def set_lamp(self, on: bool) -> None:
        if self.broken:
            raise ConnectionError("PLC link down")
        self.journal.events.append(("lamp", on))

    async def read(self, signal: str) -> Any:
        return {"lamp_on": self.lamp_stays_on, "positioner_current": 4}[signal]


def _safe(journal: Journal, plc: Plc, live: RunState, pump: Pump | None = None) -> SafeState:
    moves: list[int] = []

    async def move(position: int, timeout_s: float) -> None:
        moves.append(position)

    p = pump or Pump(journal)
    return SafeState(pump=lambda: p, plc=plc, live=live, recorder=lambda: journal,  # type: ignore[arg-type,return-value]
                     on_record_failure=lambda exc: None, move=move)


async def test_terminate_leaves_first_and_the_record_waits_for_its_answer() -> None:
    journal, live = Journal(), RunState(dispensing=True)
    pump = Pump(journal)
    safe = _safe(journal, Plc(journal), live, pump)
    safe.stop_dispensing("door opened")
    safe.after_safety(journal.post, "alarm", message="door opened")  # queued behind the T in flight
    assert live.inhibit.is_set() and safe.pending == 1
    while not journal.events:
        await asyncio.sleep(0.001)
    assert journal.events == [("T", None)], "nothing is written before the T has been answered"
    pump.release.set()
    while len(journal.events) < 3:
        await asyncio.sleep(0.001)
    assert ("alarm", {"message": "door opened"}) in journal.events[1:]
    assert ("safe_state", {"action": "terminate", "reason": "door opened", "ok": True,
                           "dispensing": True}) in journal.events[1:]


async def test_lamp_off_confirmed_by_its_feedback() -> None:
    journal, live = Journal(), RunState(lamp_off_confirmed=False)
    assert await _safe(journal, Plc(journal), live).lamp_off("Stopping", confirm=True, dispensing=False)
    assert live.lamp_off_confirmed
    assert journal.events[-1] == ("safe_state", {"action": "lamp_off", "reason": "Stopping", "ok": True,
                                                 "dispensing": False})


async def test_lamp_that_stays_on_or_a_dead_plc_is_recorded_not_raised() -> None:
    journal = Journal()
    assert not await _safe(journal, Plc(journal, lamp_stays_on=True), RunState()).lamp_off("Aborting", confirm=True)
    assert journal.events[-1][1]["ok"] is False
    assert not await _safe(journal, Plc(journal, broken=True), RunState()).lamp_off("uv_cycle did not end",
                                                                                   step="uv_cycle")
    assert journal.events[-1] == ("safe_state", {"action": "lamp_off", "reason": "uv_cycle did not end", "ok": False,
                                                 "error": "ConnectionError: PLC link down", "step": "uv_cycle"})


async def test_positioner_stop_holds_it_where_it_is() -> None:
    journal = Journal()
    await _safe(journal, Plc(journal), RunState()).stop_positioner("SIGTERM")
    assert journal.events[-1] == ("safe_state", {"action": "positioner_stop", "reason": "SIGTERM", "position": 4})
