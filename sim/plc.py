"""The machine PLC's OPC UA server (asyncua), mirroring the simulated world into a documented address space.

Address space (namespace urn:fillfinish:plc:machine, index 2; DEFAULT_NODES lists every node id):
  Objects/UV          LampCommand (Boolean, writable), LampOn, LampFault, LampId (String), LampHours (Double h),
                      SwitchCount (Int32), IrradianceRef, IrradianceTip (Double mW/cm2)
  Objects/HEPA        DifferentialPressure (Double Pa), Downflow (Double m/s), FanRunning, Fault (Boolean)
  Objects/Particles   Count0_5um, Count5um (Double particles/m3), SampleFlow (Double L/min), SampleSeq (Int32)
  Objects/Door        Closed, Locked (Boolean), LockCommand (Boolean, writable)
  Objects/Positioner  Move(Int32 position) -> Boolean accepted, Target, Current (Int32), InPosition, Fault (Boolean)
  Objects/Line        line claim, controller heartbeat watchdog, latched PLC alarm (sim/plc_watchdog.py)
Only the two command variables are writable. A background task writes the values that changed, with the simulated
time as source timestamp, when the world changes on its own (positioner arrival, particle sample due: woken exactly
then) and at the latest every `tick_s` real seconds (faults, warm-up, analog values); every particle sample is
written in order with its own sample time as source timestamp, counts before the sequence number. Client writes
reach the world through the server's PostWrite callback; on a shared timeline (--speed max) a client's read first
brings the variables up to date (PreRead). Fault plc.server_stop closes the listener and every client connection
while active, then listens again on the same port.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.server.binary_server_asyncio import BinaryServer

from sim.plc_endpoint import _free_port, _PasswordUsers, make_server_certificate
from sim.plc_space import (_FOLDERS, _VARIABLES, APPLICATION_URI, DEFAULT_NODES, ENDPOINT_PATH, NAMESPACE_URI,
                           SecurityMode)
from sim.plc_watchdog import LineGuard, default_watchdog_s
from sim.world import World

__all__ = ["DEFAULT_NODES", "NAMESPACE_URI", "PlcServer", "SecurityMode", "make_server_certificate"]

_log = logging.getLogger("sim.plc")


class PlcServer:
    """The simulated PLC: an asyncua server whose variables follow `world`, and whose commands act on it."""

    def __init__(
        self,
        world: World,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        security: SecurityMode = "None",
        certificate: Path | None = None,
        private_key: Path | None = None,
        users: dict[str, str] | None = None,
        tick_s: float = 0.02,
        analog_period_s: float = 1.0,
        watchdog_s: float | None = None,
        shelf: Path | None = None,
    ) -> None:
        if security not in ("None", "Basic256Sha256_SignAndEncrypt"):
            raise ValueError(f"PLC security {security!r}; allowed: 'None', 'Basic256Sha256_SignAndEncrypt'")
        if security != "None" and (certificate is None or private_key is None):
            raise ValueError("PLC security Basic256Sha256_SignAndEncrypt needs certificate and private_key paths")
        self.world = world
        self.host = host
        self.port = port
        self.security = security
        self.certificate = Path(certificate) if certificate else None
        self.private_key = Path(private_key) if private_key else None
        self.users = users
        self.shelf = shelf  # asyncua's standard address space, written by an earlier start (read lazily: fast)
        self.tick_s = tick_s
        self.analog_period_s = analog_period_s  # simulated seconds between samples of the noisy analog values
        self._server: Server | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._by_nodeid: dict[ua.NodeId, str] = {}
        self._last: dict[str, Any] = {}
        self._last_analog = -float("inf")
        self._published_seq = 0  # the last particle sample written to the address space
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = False
        self.restarts = 0
        self.guard = LineGuard(world, watchdog_s=watchdog_s or default_watchdog_s(world.clock.speed))

    # -- properties --------------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """opc.tcp://HOST:PORT/fillfinish/plc (the real port once started)."""
        return f"opc.tcp://{self.host}:{self.port}{ENDPOINT_PATH}"

    @property
    def nodes(self) -> dict[str, str]:
        """Signal name -> node id string, for the site config's [plc.nodes]."""
        return dict(DEFAULT_NODES)

    @property
    def listening(self) -> bool:
        """False while the plc.server_stop fault holds the server down."""
        return self._listening

    # -- start / stop ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Build the address space and listen (about 2 s while asyncua builds its standard address space; a fraction of
        that from a ready `shelf`)."""
        if self.port == 0:
            self.port = _free_port(self.host)
        server = Server(user_manager=_PasswordUsers(self.users) if self.users is not None else None)
        await server.init(self.shelf if self.shelf is not None and Path(self.shelf).exists() else None)
        server.set_endpoint(self.endpoint)
        server.set_server_name("fillfinish simulated PLC")
        await server.set_application_uri(APPLICATION_URI)
        if self.security == "None":
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        else:
            assert self.certificate is not None and self.private_key is not None
            if not self.certificate.is_file() or not self.private_key.is_file():
                await make_server_certificate(self.certificate, self.private_key)
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(self.private_key))
        if self.users is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        idx = await server.register_namespace(NAMESPACE_URI)
        if idx != 2:
            raise RuntimeError(f"expected namespace index 2 for {NAMESPACE_URI}, got {idx}")
        await self._build(server, idx)
        await self.guard.build(server, idx)
        server.subscribe_server_callback(CallbackType.PostWrite, self._post_write)
        server.subscribe_server_callback(CallbackType.PreRead, self._pre_read)
        self._server = server
        await self._mirror_once(force=True)
        await server.start()
        self._listening = True
        self._tasks = [
            asyncio.create_task(self._mirror_loop(), name="sim-plc-mirror"),
            asyncio.create_task(self._fault_loop(), name="sim-plc-faults"),
            asyncio.create_task(self.guard.run(self.tick_s), name="sim-plc-watchdog"),
        ]
        _log.info("PLC server listening on %s", self.endpoint)

    async def stop(self) -> None:
        """Stop the background tasks and the server."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._server is not None:
            await self._server.stop()
            await self._close_sessions()
            self._server = None
        self._listening = False

    async def _build(self, server: Server, idx: int) -> None:
        objects = server.nodes.objects
        folders = {}
        for name in _FOLDERS:
            folders[name] = await objects.add_object(ua.NodeId(name, idx), ua.QualifiedName(name, idx))
        for signal, (folder, browse, vtype, initial, writable) in _VARIABLES.items():
            nodeid = ua.NodeId(f"{folder}.{browse}", idx)
            var = await folders[folder].add_variable(nodeid, ua.QualifiedName(browse, idx), ua.Variant(initial, vtype))
            if writable:
                await var.set_writable()
            self._nodes[signal] = nodeid
            self._by_nodeid[nodeid] = signal
        await folders["Positioner"].add_method(
            ua.NodeId("Positioner.Move", idx), ua.QualifiedName("Move", idx), self._move,
            [ua.VariantType.Int32], [ua.VariantType.Boolean, ua.VariantType.Boolean],
        )

    # -- world -> variables ------------------------------------------------------------------------------------
    def _world_values(self, force: bool) -> dict[str, Any]:
        w = self.world
        current, in_position = w.positioner_state()
        values: dict[str, Any] = {
            "lamp_on": w.lamp_on(),
            "lamp_fault": w.lamp_fault(),
            "lamp_id": w.s.lamp_id,
            "lamp_hours": round(w.lamp_hours(), 5),
            "lamp_switch_count": w.lamp.switch_count,
            "uv_ref_mw_cm2": round(w.irradiance_ref(), 5),
            "uv_tip_mw_cm2": round(w.irradiance_tip(), 5),
            "hepa_fan_running": w.hepa_fan_running(),
            "hepa_fault": w.hepa_fault(),
            "door_closed": w.door_closed(),
            "door_locked": w.door_locked(),
            "positioner_target": w.positioner.target,
            "positioner_current": current,
            "positioner_in_position": in_position,
            "positioner_fault": w.positioner_fault(),
        }
        now = w.now()
        fan_changed = self._last.get("hepa_fan_running") != values["hepa_fan_running"]
        if force or fan_changed or now - self._last_analog >= self.analog_period_s:
            self._last_analog = now
            values["hepa_dp_pa"] = round(w.hepa_dp_pa(), 2)
            values["downflow_m_s"] = round(w.downflow_m_s(), 4)
        if force and w.latest_particle_sample() is None:
            values["particle_flow_l_min"] = float(w.s.sample_flow_l_min)
        return values

    def _particle_values(self, force: bool) -> list[tuple[float, dict[str, Any]]]:
        """(sample time, values) of every particle sample not yet published, oldest first (at start: the latest
        only). Each sample is written as its own set of values, so a client queue sees every one of them."""
        if force:
            latest = self.world.latest_particle_sample()
            samples = [latest] if latest is not None else []
        else:
            samples = self.world.particle_samples_after(self._published_seq)
        out = []
        for sample in samples:
            self._published_seq = sample.seq
            out.append((sample.time, {
                "particles_0_5um_per_m3": float(sample.per_m3_0_5um),
                "particles_5um_per_m3": float(sample.per_m3_5um),
                "particle_flow_l_min": float(sample.flow_l_min),
                "particle_sample_seq": sample.seq,  # last: a client that sees the number has the counts
            }))
        return out

    async def _mirror_once(self, force: bool = False) -> None:
        """Write every world value that changed (all of them when `force`), then each unpublished particle sample."""
        assert self._server is not None
        batches = [(self.world.now(), self._world_values(force)), *self._particle_values(force)]
        for t, values in batches:
            stamp = datetime.fromtimestamp(t, tz=timezone.utc)
            for signal, value in values.items():
                if not force and self._last.get(signal) == value:
                    continue
                self._last[signal] = value
                vtype = _VARIABLES[signal][2]
                dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=stamp, ServerTimestamp=stamp)
                await self._server.write_attribute_value(self._nodes[signal], dv)

    def _next_wait_s(self) -> float:
        """Real seconds until the mirror must look again: the world's next own change (positioner arrival, particle
        sample) if that comes before the fallback tick (faults, lamp warm-up, the noisy analog values, which a PLC
        refreshes at its own real-time rate)."""
        now = self.world.now()
        wait = max(0.0, min(self.tick_s, self.world.clock.real_seconds(self.world.next_change_at() - now)))
        if getattr(self.world.clock, "timeline", None) is not None:
            # on a shared timeline (--speed max) simulated time moves only when a waiter advances it, and a client's
            # read brings the variables up to date first (PreRead): polling an arrival sooner than a quarter tick
            # only spins while time stands still (about 7 passes a vial before this floor)
            wait = max(wait, self.tick_s / 4)
        return wait

    async def _mirror_loop(self) -> None:
        """Publish world changes as they happen: wake at the world's next scheduled change (exactly on time in
        simulated time) or after `tick_s` real seconds, whichever comes first; commands publish at once."""
        while True:
            try:
                await self._mirror_once()
                wait = self._next_wait_s()
            except Exception:
                _log.exception("PLC mirror failed")
                wait = self.tick_s
            await asyncio.sleep(wait)

    # -- client commands -> world ------------------------------------------------------------------------------
    async def _post_write(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        if not event.is_external:
            return
        for write, status in zip(event.request_params.NodesToWrite, event.response_params):
            if write.AttributeId != ua.AttributeIds.Value or not status.is_good():
                continue
            signal = self._by_nodeid.get(write.NodeId)
            value = write.Value.Value.Value if write.Value and write.Value.Value else None
            if signal not in ("lamp_command", "door_lock_command") or not isinstance(value, bool):
                continue
            self.world.faults.notify_command("plc")
            if signal == "lamp_command":
                self.world.set_lamp(value)
            else:
                self.world.set_door_lock(value)
            _log.info("PLC command %s = %s", signal, value)
            await self._mirror_once()

    async def _pre_read(self, event: ServerItemCallback, _dispatcher: Any) -> None:
        """On a shared timeline (--speed max) a client's read sees the world as it is now, not as of the last mirror
        pass: simulated time may have jumped since (a move ended, the lamp warmed up). On a steady clock the mirror
        loop already publishes each change when it happens, so reads cost no extra pass."""
        if event.is_external and self._server is not None and getattr(self.world.clock, "timeline", None) is not None:
            await self._mirror_once()

    async def _move(self, parent: ua.NodeId, position: ua.Variant) -> list[ua.Variant]:
        """Method Move(Int32 position) -> (Boolean accepted, Boolean in_position).

        On a steady clock the move runs on after the call returns (in_position False unless already there), as on a
        PLC whose move is a command. On a shared timeline (--speed max) the move is the machine's wait and takes no
        real time: the method moves simulated time to the arrival it announced and returns in position, so the
        client needs no pause and no read for it. A jammed positioner returns at once, not in position."""
        self.world.faults.notify_command("plc")
        target = int(position.Value)
        accepted = self.world.move_positioner(target)
        timeline = getattr(self.world.clock, "timeline", None)
        if accepted and timeline is not None and not self.world.positioner_fault():
            left = self.world.positioner.arrive_at - self.world.now()
            if left > 0:
                await timeline.aadvance(left, to_wake=True)
        current, in_position = self.world.positioner_state()
        arrived = bool(accepted and in_position and current == target)
        _log.info("PLC Move(%s) -> %s (in position %s)", target, accepted, arrived)
        await self._mirror_once()
        return [ua.Variant(accepted, ua.VariantType.Boolean), ua.Variant(arrived, ua.VariantType.Boolean)]

    # -- fault plc.server_stop ---------------------------------------------------------------------------------
    async def _fault_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                down = self.world.faults.active("plc.server_stop")
                if down and self._listening:
                    await self._stop_listening()
                elif not down and not self._listening:
                    await self._start_listening()
            except Exception:
                _log.exception("PLC fault supervisor failed")

    async def _stop_listening(self) -> None:
        """Close the listener and every client connection (what a crashed PLC runtime looks like on the wire)."""
        assert self._server is not None and self._server.bserver is not None
        self._listening = False
        listener = getattr(self._server.bserver, "_server", None)
        if listener is not None:  # stop accepting first: BinaryServer.stop() closes its listener last
            listener.close()
        await self._server.bserver.stop()
        await self._close_sessions()
        _log.warning("PLC server stopped (fault plc.server_stop)")

    async def _close_sessions(self) -> None:
        """Forget every client session, as a restarted PLC runtime would (clients must open new ones)."""
        assert self._server is not None
        sessions = getattr(self._server.iserver, "_external_sessions", {})
        for session in list(sessions.values()):
            try:
                await session.close_session(True)
            except Exception:
                _log.debug("closing a dropped session failed", exc_info=True)

    async def _start_listening(self) -> None:
        """Listen again on the same port, retrying until the port can be bound."""
        assert self._server is not None and self._server.bserver is not None
        old = self._server.bserver
        fresh = BinaryServer(self._server.iserver, self.host, self.port, self._server.limits)
        fresh.set_policies(old._policies)
        await fresh.start()
        self._server.bserver = fresh
        self._listening = True
        self.restarts += 1
        _log.warning("PLC server listening again on %s", self.endpoint)
