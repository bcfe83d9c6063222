"""The simulated PLC's own safety program: controller heartbeat watchdog, line claim, door-open -> lamp off.

The PLC owns the hazards (IEC 60204-1 / ISO 13849 thinking), so none of this depends on a live controller:
  Objects/Line  Claim(String owner, String info) -> String ("" granted, else the holder's info), Release(String
                owner) -> Boolean, ResetAlarm(String owner) -> Boolean, Heartbeat (Int32, writable: the owner writes
                a new value every interval), Owner (String: the holder's info, "" when free), WatchdogTime (Double
                s), LastHeartbeat (Double, simulated Unix s), WatchdogTripped (Boolean, latched), Alarm (String,
                latched, "" when none), AlarmTime (Double, simulated Unix s).
A claim is a lease: it lasts WatchdogTime simulated seconds after the last heartbeat (or the claim). A lease that runs
out trips the watchdog: lamp off, positioner stopped, door kept locked while the lamp may still be on or hot
(`lamp_cooldown_s` after the lamp went off), then released; WatchdogTripped and Alarm latch until the next owner
resets them (after recording them). A door that opens while the lamp is commanded on switches the lamp off here.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback

from sim.world import World

# signal name -> (browse name, variant type, initial value, writable), all under Objects/Line
_LINE_VARIABLES: dict[str, tuple[str, ua.VariantType, Any, bool]] = {
    "line_heartbeat": ("Heartbeat", ua.VariantType.Int32, 0, True),
    "line_owner": ("Owner", ua.VariantType.String, "", False),
    "line_watchdog_s": ("WatchdogTime", ua.VariantType.Double, 0.0, False),
    "line_last_heartbeat": ("LastHeartbeat", ua.VariantType.Double, 0.0, False),
    "watchdog_tripped": ("WatchdogTripped", ua.VariantType.Boolean, False, False),
    "plc_alarm": ("Alarm", ua.VariantType.String, "", False),
    "plc_alarm_time": ("AlarmTime", ua.VariantType.Double, 0.0, False),
}
_LINE_METHODS = {"line_claim": "Claim", "line_release": "Release", "line_reset_alarm": "ResetAlarm"}

GUARD_NODES: dict[str, str] = {
    "line_object": "ns=2;s=Line",
    **{name: f"ns=2;s=Line.{browse}" for name, (browse, *_rest) in _LINE_VARIABLES.items()},
    **{name: f"ns=2;s=Line.{browse}" for name, browse in _LINE_METHODS.items()},
}

_log = logging.getLogger("sim.plc.watchdog")


def default_watchdog_s(speed: float) -> float:
    """The simulated PLC's watchdog time in simulated seconds: 2 s of machine time, but never under 3 real seconds
    at a high clock speed (a loaded test machine must not trip it by scheduling delay alone)."""
    return max(2.0, 3.0 * speed)


class LineGuard:
    """The PLC's line claim and controller watchdog, wired into a PlcServer's address space and tick loop."""

    def __init__(self, world: World, *, watchdog_s: float, lamp_cooldown_s: float = 60.0) -> None:
        if not watchdog_s > 0:
            raise ValueError(f"watchdog_s must be > 0, got {watchdog_s!r}")
        self.world = world
        self.watchdog_s = float(watchdog_s)  # simulated seconds
        self.lamp_cooldown_s = float(lamp_cooldown_s)  # simulated seconds after lamp off before the door unlocks
        self.owner = ""  # the claiming controller's token ("" = free)
        self.owner_info = ""  # what a refused claimant is told (host, pid, batch)
        self.last_heartbeat = 0.0
        self.tripped = False
        self.alarm = ""
        self.alarm_time = 0.0
        self.trips = 0
        self._heartbeat_value: Any = None
        self._lamp_off_at: float | None = None  # after a trip: when the lamp went off (door held locked till cool)
        self._server: Server | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._last: dict[str, Any] = {}
        self._forced: dict[ua.NodeId, bool] = {}  # command variable -> value the safety program set

    # -- address space -----------------------------------------------------------------------------------------
    async def build(self, server: Server, idx: int) -> None:
        """Add Objects/Line with its variables and methods, and listen for heartbeat writes."""
        self._server = server
        folder = await server.nodes.objects.add_object(ua.NodeId("Line", idx), ua.QualifiedName("Line", idx))
        for signal, (browse, vtype, initial, writable) in _LINE_VARIABLES.items():
            nodeid = ua.NodeId(f"Line.{browse}", idx)
            var = await folder.add_variable(nodeid, ua.QualifiedName(browse, idx), ua.Variant(initial, vtype))
            if writable:
                await var.set_writable()
            self._nodes[signal] = nodeid
        s, b = ua.VariantType.String, ua.VariantType.Boolean
        await folder.add_method(ua.NodeId("Line.Claim", idx), ua.QualifiedName("Claim", idx), self._claim, [s, s], [s])
        await folder.add_method(ua.NodeId("Line.Release", idx), ua.QualifiedName("Release", idx), self._release,
                                [s], [b])
        await folder.add_method(ua.NodeId("Line.ResetAlarm", idx), ua.QualifiedName("ResetAlarm", idx),
                                self._reset_alarm, [s], [b])
        # priority 10: its own listener slot (the PLC server's PostWrite listener holds the default slot 0)
        server.iserver.callback_service.addListener(CallbackType.PostWrite, self._post_write, 10)
        await self.publish(force=True)

    async def publish(self, force: bool = False) -> None:
        """Write the guard's state into its variables (only the values that changed)."""
        if self._server is None:
            return
        values = {"line_owner": self.owner_info if self.owner else "", "line_watchdog_s": self.watchdog_s,
                  "line_last_heartbeat": self.last_heartbeat, "watchdog_tripped": self.tripped,
                  "plc_alarm": self.alarm, "plc_alarm_time": self.alarm_time}
        stamp = datetime.fromtimestamp(self.world.now(), tz=timezone.utc)
        for nodeid, value in self._forced.items():  # command variables the safety program overrode
            dv = ua.DataValue(ua.Variant(value, ua.VariantType.Boolean), SourceTimestamp=stamp, ServerTimestamp=stamp)
            await self._server.write_attribute_value(nodeid, dv)
        self._forced.clear()
        for signal, value in values.items():
            if not force and self._last.get(signal) == value:
                continue
            self._last[signal] = value
            vtype = _LINE_VARIABLES[signal][1]
            dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=stamp, ServerTimestamp=stamp)
            await self._server.write_attribute_value(self._nodes[signal], dv)

    # -- methods -----------------------------------------------------------------------------------------------
    async def _claim(self, parent: ua.NodeId, owner: ua.Variant, info: ua.Variant) -> list[ua.Variant]:
        """Claim(owner, info): granted ("") when the line is free, its lease ran out, or `owner` already holds it
        (then `info` is updated); else the holder's info."""
        token, text = str(owner.Value or ""), str(info.Value or "")
        self.check()
        if not token:
            return [ua.Variant("refused: empty owner", ua.VariantType.String)]
        if self.owner and self.owner != token:
            _log.warning("PLC line claim by %s refused: held by %s", text, self.owner_info)
            return [ua.Variant(self.owner_info or "another controller", ua.VariantType.String)]
        if self.owner != token:
            self.last_heartbeat = self.world.now()
            self._lamp_off_at = None  # a new holder takes the line over: the trip's cool-down hold ends
        self.owner, self.owner_info = token, text
        _log.info("PLC line claimed by %s", text)
        await self.publish()
        return [ua.Variant("", ua.VariantType.String)]

    async def _release(self, parent: ua.NodeId, owner: ua.Variant) -> list[ua.Variant]:
        """Release(owner): the holder gives the line back (the watchdog is disarmed without a trip)."""
        ok = bool(self.owner) and self.owner == str(owner.Value or "")
        if ok:
            _log.info("PLC line released by %s", self.owner_info)
            self.owner, self.owner_info = "", ""
            await self.publish()
        return [ua.Variant(ok, ua.VariantType.Boolean)]

    async def _reset_alarm(self, parent: ua.NodeId, owner: ua.Variant) -> list[ua.Variant]:
        """ResetAlarm(owner): the holder has recorded the latched alarm; clear it (refused to anyone else)."""
        ok = bool(self.owner) and self.owner == str(owner.Value or "")
        if ok:
            self.tripped, self.alarm, self.alarm_time = False, "", 0.0
            await self.publish()
        return [ua.Variant(ok, ua.VariantType.Boolean)]

    async def _post_write(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        """A changed Heartbeat value from a client renews the holder's lease."""
        if not event.is_external:
            return
        for write, status in zip(event.request_params.NodesToWrite, event.response_params):
            if write.NodeId != self._nodes.get("line_heartbeat") or not status.is_good():
                continue
            value = write.Value.Value.Value if write.Value and write.Value.Value else None
            if self.owner and value != self._heartbeat_value:
                self.last_heartbeat = self.world.now()
            self._heartbeat_value = value

    # -- the PLC's scan ----------------------------------------------------------------------------------------
    def check(self) -> None:
        """One scan of the safety program on the simulated clock (called every server tick)."""
        w, now = self.world, self.world.now()
        if self.owner and now - self.last_heartbeat > self.watchdog_s:
            self._trip(f"controller heartbeat lost for {now - self.last_heartbeat:.1f} s (watchdog "
                       f"{self.watchdog_s:g} s; holder {self.owner_info or self.owner})")
        if not w.door_closed() and w.lamp.commanded:
            self._lamp_off()
            self._latch("door opened with the UV lamp on: lamp switched off by the PLC")
        if self._lamp_off_at is not None:  # after a trip: locked while the lamp may still be on or hot
            if w.lamp.commanded:
                self._lamp_off()
                self._lamp_off_at = now
            if now - self._lamp_off_at < self.lamp_cooldown_s:
                if not w.door_lock_commanded:
                    self._door_lock(True)
            else:
                self._door_lock(False)
                self._lamp_off_at = None

    def _lamp_off(self) -> None:
        """Switch the lamp off and show it on the LampCommand variable too (the PLC overrides the command)."""
        self.world.set_lamp(False)
        self._forced[ua.NodeId("UV.LampCommand", 2)] = False
        self._forced[ua.NodeId("UV.LampOn", 2)] = False  # published with the alarm, not a mirror tick later

    def _door_lock(self, locked: bool) -> None:
        """Drive the door lock and show it on the LockCommand variable."""
        self.world.set_door_lock(locked)
        self._forced[ua.NodeId("Door.LockCommand", 2)] = locked

    def _trip(self, why: str) -> None:
        """Watchdog trip: lamp off, positioner stopped, door held locked until the lamp is cool; alarm latched."""
        w = self.world
        self._lamp_off()
        w.stop_positioner()
        self._door_lock(True)
        self._lamp_off_at = w.now()
        self.owner, self.owner_info = "", ""
        self.tripped = True
        self.trips += 1
        self._latch(why)
        _log.warning("PLC watchdog tripped: %s", why)

    def _latch(self, message: str) -> None:
        """Latch the PLC alarm (the first one stays until reset)."""
        if not self.alarm:
            self.alarm, self.alarm_time = message, self.world.now()

    async def run(self, tick_s: float) -> None:
        """The PLC's safety scan: check and publish every `tick_s` real seconds until cancelled."""
        import asyncio

        while True:
            try:
                self.check()
                await self.publish()
            except Exception:
                _log.exception("PLC safety scan failed")
            await asyncio.sleep(tick_s)
