"""Continuous environmental monitoring and interlock watching, fed by the PLC driver's subscriptions.

Each particle sample is compared with the recipe's alert and action limits (with the consecutive-alert rule); HEPA
differential pressure and downflow with their ranges; fan, door, lamp fault, positioner fault and the PLC link are
interlocks. The monitor only raises `Alarm`s (on the change into a bad state) and `clear`s; the controller decides
what to do (record, terminate a dispense, lamp off, Hold).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable

import structlog

from fillfinish.clock import Clock
from hal.transport.tasks import cancel_and_wait

log = structlog.get_logger("fillfinish.monitor")

SEVERITY_ORDER = {"alert": 1, "action": 2, "fault": 3, "interlock": 3}
_SAMPLE_SIGNALS = ("particles_0_5um_per_m3", "particles_5um_per_m3", "particle_flow_l_min")


async def _passing(clock: Any, sim_seconds: float) -> None:
    """Await `sim_seconds` of simulated time without moving it (Clock.await_passing; plain asleep otherwise)."""
    passing = getattr(clock, "await_passing", None)
    await (passing(sim_seconds) if passing is not None else clock.asleep(sim_seconds))


@dataclass(frozen=True)
class Alarm:
    """One excursion or interlock trip: severity alert | action | fault | interlock."""

    severity: str
    source: str
    message: str
    value: Any = None
    limit: Any = None
    time: float = 0.0

    def as_record(self) -> dict[str, Any]:
        return {"severity": self.severity, "source": self.source, "message": self.message, "value": self.value,
                "limit": self.limit}


@dataclass
class EnvLimits:
    """The recipe's environmental limits (units in the names)."""

    particles_0_5um_alert_per_m3: float
    particles_0_5um_action_per_m3: float
    particles_5um_alert_per_m3: float
    particles_5um_action_per_m3: float
    consecutive_alerts_to_action: int
    hepa_dp_min_pa: float
    hepa_dp_max_pa: float
    downflow_min_m_s: float
    downflow_max_m_s: float
    min_sample_flow_l_min: float

    @classmethod
    def from_recipe(cls, env: Any) -> "EnvLimits":
        return cls(**{name: getattr(env, name) for name in cls.__dataclass_fields__})


@dataclass
class _Trend:
    consecutive_alerts: int = 0


class EnvironmentMonitor:
    """Watches the PLC's subscribed signals; calls on_alarm / on_clear / on_sample in the event loop."""

    def __init__(
        self,
        plc: Any,
        limits: EnvLimits,
        clock: Clock,
        *,
        on_alarm: Callable[[Alarm], None],
        on_clear: Callable[[str], None] = lambda source: None,
        on_sample: Callable[[dict[str, Any]], None] = lambda sample: None,
        sample_timeout_s: float = 300.0,
    ) -> None:
        self.plc = plc
        self.limits = limits
        self.clock = clock
        self.on_alarm = on_alarm
        self.on_clear = on_clear
        self.on_sample = on_sample
        self.active: dict[str, Alarm] = {}  # source -> alarm in force
        self.latest: dict[str, Any] = {}
        self.last_sample: dict[str, Any] | None = None
        self.missed_samples = 0
        self._trend = {"0_5um": _Trend(), "5um": _Trend()}
        self._last_seq: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = False
        self.sample_timeout_s = sample_timeout_s  # five sample intervals of 60 s: continuous monitoring has stopped
        self._unregister: list[Callable[[], None]] = []
        self._started_at = 0.0

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        self._started_at = self.clock.now()
        self._unregister = [self.plc.on_change(self._changed), self.plc.on_link(self._link)]
        for signal, value in self.plc.snapshot().items():
            self._changed(signal, value[0] if isinstance(value, tuple) else value, None)
        task = asyncio.get_running_loop().create_task(self._watchdog())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watchdog(self) -> None:
        """Continuous monitoring must stay continuous: no sample for sample_timeout_s is an action excursion."""
        while self._running:
            await _passing(self.clock, 5.0)  # a watcher: on a shared timeline it must not move time itself
            since = self.last_sample["time"] if self.last_sample else self._started_at
            quiet = self.clock.now() - since
            self._check("particle_monitoring", quiet > self.sample_timeout_s, "action",
                        f"no particle sample for {quiet:,.0f} s (continuous monitoring interrupted)", round(quiet, 1),
                        self.sample_timeout_s)

    async def stop(self) -> None:
        self._running = False
        for unregister in self._unregister:
            unregister()
        self._unregister = []
        await cancel_and_wait(list(self._tasks))
        self._tasks.clear()

    # -- state for guards -----------------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Every condition in force that forbids filling (action excursions, interlocks, faults)."""
        return [a.message for a in self.active.values() if a.severity != "alert"]

    def environment_ok(self) -> bool:
        return not self.problems()

    # -- signal handling ------------------------------------------------------------------------------------------
    def _raise(self, alarm: Alarm) -> None:
        current = self.active.get(alarm.source)
        if current is not None and SEVERITY_ORDER[current.severity] >= SEVERITY_ORDER[alarm.severity]:
            return
        self.active[alarm.source] = alarm
        self.on_alarm(alarm)  # the controller's safety actions first, the log line after
        log.warning("monitor.alarm", **alarm.as_record())

    def _clear(self, source: str) -> None:
        if self.active.pop(source, None) is not None:
            log.info("monitor.clear", source=source)
            self.on_clear(source)

    def _check(self, source: str, bad: bool, severity: str, message: str, value: Any, limit: Any) -> None:
        if bad:
            self._raise(Alarm(severity, source, message, value, limit, self.clock.now()))
        else:
            self._clear(source)

    def _changed(self, signal: str, value: Any, timestamp: Any) -> None:
        if not self._running:
            return
        self.latest[signal] = value
        L = self.limits
        if signal == "hepa_dp_pa":
            bad = not (L.hepa_dp_min_pa <= value <= L.hepa_dp_max_pa)
            self._check("hepa_dp", bad, "action", f"HEPA differential pressure {value:.1f} Pa outside "
                        f"{L.hepa_dp_min_pa:g}-{L.hepa_dp_max_pa:g} Pa", round(value, 2),
                        [L.hepa_dp_min_pa, L.hepa_dp_max_pa])
        elif signal == "downflow_m_s":
            bad = not (L.downflow_min_m_s <= value <= L.downflow_max_m_s)
            self._check("downflow", bad, "action", f"downflow {value:.3f} m/s outside "
                        f"{L.downflow_min_m_s:g}-{L.downflow_max_m_s:g} m/s", round(value, 4),
                        [L.downflow_min_m_s, L.downflow_max_m_s])
        elif signal == "hepa_fan_running":
            self._check("hepa_fan", not value, "interlock", "HEPA fan stopped", value, True)
        elif signal == "hepa_fault":
            self._check("hepa_fault", bool(value), "interlock", "HEPA unit fault", value, False)
        elif signal == "door_closed":
            self._check("door", not value, "interlock", "enclosure door open", value, True)
        elif signal == "lamp_fault":
            self._check("lamp", bool(value), "fault", "UV lamp fault", value, False)
        elif signal == "positioner_fault":
            self._check("positioner", bool(value), "fault", "vial positioner fault", value, False)
        elif signal == "particle_sample_seq" and value:
            values = self._notified_counts(timestamp)
            if values is not None:  # the counts came with the number: judge now (an interlock acts at once)
                self._judge_sample(int(value), values)
                return
            task = asyncio.get_running_loop().create_task(self._sample(int(value)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _link(self, up: bool, reason: str) -> None:
        if not self._running:
            return
        self._check("plc_link", not up, "interlock", f"PLC link lost: {reason}", reason, "connected")

    def _notified_counts(self, timestamp: Any) -> list[float] | None:
        """The sample's counts and flow from the subscription when all three carry the sequence number's source
        timestamp (the PLC writes them with it, before the number); None when any is older (then they are read)."""
        if timestamp is None:
            return None
        snap = self.plc.snapshot()
        values = []
        for name in _SAMPLE_SIGNALS:
            sample = snap.get(name)
            if sample is None or sample[1] != timestamp:
                return None
            values.append(sample[0])
        return values

    async def _sample(self, seq: int) -> None:
        """Read one particle sample (its counts were not notified with its number) and judge it."""
        if self._last_seq is not None and seq == self._last_seq:
            return
        try:
            values = [await self.plc.read(name) for name in _SAMPLE_SIGNALS]
        except Exception as exc:  # the link watcher raises the interlock; a lost sample is a gap, not a crash
            log.warning("monitor.sample_unreadable", seq=seq, error=str(exc))
            self.missed_samples += 1
            return
        self._judge_sample(seq, values)

    def _judge_sample(self, seq: int, values: list[float]) -> None:
        """Judge one particle sample (counts and flow) against the alert and action limits and the sample gap."""
        if self._last_seq is not None and seq == self._last_seq:
            return
        missed = seq - self._last_seq - 1 if self._last_seq is not None and seq > self._last_seq else 0
        self._last_seq = seq  # a lower number: the counter restarted; follow it
        if missed:
            self.missed_samples += missed
            self._raise(Alarm("action", "particle_gap", f"{missed} particle sample(s) missed before sample {seq}",
                              missed, 0, self.clock.now()))
        sample = {"seq": seq, "per_m3_0_5um": values[0], "per_m3_5um": values[1], "flow_l_min": values[2],
                  "time": self.clock.now()}
        self.last_sample = sample
        self._judge_limits(seq, values)  # an action excursion terminates a dispense before the sample is recorded
        self.on_sample(sample)
        if not missed:
            self._clear("particle_gap")

    def _judge_limits(self, seq: int, values: list[float]) -> None:
        """Sample flow and both particle sizes against the recipe's alert and action limits."""
        L = self.limits
        self._check("sample_flow", values[2] < L.min_sample_flow_l_min, "action",
                    f"particle sample flow {values[2]:.1f} L/min below {L.min_sample_flow_l_min:g} L/min",
                    values[2], L.min_sample_flow_l_min)
        for size, value, alert, action in (
            ("0_5um", values[0], L.particles_0_5um_alert_per_m3, L.particles_0_5um_action_per_m3),
            ("5um", values[1], L.particles_5um_alert_per_m3, L.particles_5um_action_per_m3),
        ):
            label = ">=0.5 um" if size == "0_5um" else ">=5 um"
            trend = self._trend[size]
            source = f"particles_{size}"
            if value >= action:
                trend.consecutive_alerts = 0
                self._raise(Alarm("action", source, f"particles {label} {value:g}/m3 at or above action limit "
                                  f"{action:g}/m3 (sample {seq})", value, action, self.clock.now()))
            elif value >= alert:
                trend.consecutive_alerts += 1
                if trend.consecutive_alerts >= L.consecutive_alerts_to_action:
                    self._raise(Alarm("action", source, f"particles {label}: {trend.consecutive_alerts} consecutive "
                                      f"samples at or above alert limit {alert:g}/m3 (sample {seq}: {value:g}/m3)",
                                      value, alert, self.clock.now()))
                else:
                    self._raise(Alarm("alert", source, f"particles {label} {value:g}/m3 at or above alert limit "
                                      f"{alert:g}/m3 (sample {seq})", value, alert, self.clock.now()))
            else:
                trend.consecutive_alerts = 0
                self._clear(source)
