"""The monitor's and the phase watch's callbacks: act at once where safety needs it (through the safe-state
component: the pump's T before anything else, the lamp-off request before any record write), then record the alarm,
its deviation and the Hold."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, Any

from fillfinish.batch.recorder import RecordFailure
from fillfinish.control import AlarmView
from fillfinish.monitor import Alarm
from fillfinish.phase_watch import LAMP_OFF_SOURCES

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController

LAMP_ALARM_SOURCES = ("door", "lamp", "plc_link")
"""Alarms that switch the lamp off while it is not confirmed off (a UV step is under way)."""


class AlarmHandling:
    """The callbacks one run gives its EnvironmentMonitor and PhaseWatch (all called in the event loop)."""

    def __init__(self, c: BatchController) -> None:
        self.c = c

    def on_alarm(self, alarm: Alarm) -> None:
        """Safety first (terminate, lamp off), then the record once those have been answered."""
        c = self.c
        if alarm.severity != "alert":
            c.safe.stop_dispensing(alarm.message)
        if (alarm.source in LAMP_ALARM_SOURCES and not c.live.lamp_off_confirmed) \
                or alarm.source in LAMP_OFF_SOURCES:  # a lamp on when it must be off (phase watch)
            c.safe.lamp_off_soon(alarm.message, then=lambda: self.record_alarm(alarm))
            return
        asyncio.get_running_loop().call_soon(c.safe.after_safety, self.record_alarm, alarm)

    def record_alarm(self, alarm: Alarm) -> None:
        """The alarm, its deviation and the Hold, in the record (after the safety actions have left). The two
        entries are queued as one job on the record's writer thread: the deviation names the alarm's seq."""
        c = self.c
        rec, phase = c.recorder, c.phases.current.value if c.phases.current else None
        state = c.machine.state.name

        def entries() -> None:
            seq = rec.append_now("alarm", "monitor", alarm.as_record())
            if alarm.severity != "alert":
                rec.append_now("deviation", "monitor", {"event": "opened", "alarm_entry": seq, "source": alarm.source,
                                                        "message": alarm.message, "phase": phase, "state": state})

        try:
            rec.post_call(entries)
            c.alarms.append(AlarmView(len(c.alarms) + 1, alarm.severity, alarm.source, alarm.message,
                                      _iso(alarm.time or c.clock.now())))
            if alarm.severity != "alert":
                c.stop_reason = c.stop_reason or alarm.message
                c.live.hold_cause = alarm.message
                c.machine.request_hold("monitor", alarm.message)
        except RecordFailure as exc:
            c.fail(exc)
        c.wake.set()

    def on_clear(self, source: str) -> None:
        """An alarm's cause went away: recorded (a person still decides to unhold)."""
        self.c.safe.after_safety(self._write, "alarm_clear", source=source)

    def on_sample(self, sample: dict[str, Any]) -> None:
        """One particle sample, recorded."""
        self.c.safe.after_safety(self._write, "measurement", signal="particles", **sample)

    def _write(self, kind: str, **data: Any) -> None:
        """A monitor entry; a failed write stops the run in a safe state."""
        try:
            self.c.recorder.post(kind, "monitor", **data)
        except RecordFailure as exc:
            self.c.fail(exc)


def _iso(t: float) -> str:
    """Unix seconds -> ISO 8601 UTC to the second."""
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")
