"""The machine PLC driver: UV lamp, UV sensors, HEPA, particle counter, door and vial positioner over OPC UA.

Node ids come from the site config's [plc.nodes] (signal names: hal/plc/signals.py) and are checked against the
server at connect, so a wrong id fails at start-up with the signal named (PlcBadNode), not in the middle of a batch.
The monitored signals are kept subscribed (publishing interval 20 ms); `snapshot()` holds their latest values with
the PLC's source timestamps and `on_change` callbacks see every change. Link loss is reported at once via `on_link`;
the link reconnects by itself and calls fail fast with PlcLinkLost meanwhile.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import structlog
from asyncua import ua

from hal.plc.errors import (
    PlcAuthRefused,
    PlcBadNode,
    PlcError,
    PlcLinkLost,
    PlcTimeout,
    PlcWriteRefused,
    PositionerFault,
    PositionerTimeout,
)
from hal.plc.security import PlcSecurity
from hal.plc.signals import SIGNALS, VARIABLE_ACCESS, VARIANT_TYPES, readable_signals, subscribed_signals, validate_nodes
from hal.transport.errors import LinkClosed, LinkError, LinkTimeout
from hal.transport.opcua_link import LinkRefused, LinkStatusError, OpcUaLink
from hal.transport.wirelog import WireLog
from hal.transport.tasks import cancel_and_wait

ChangeCallback = Callable[[str, Any, "float | None"], Any]
LinkCallback = Callable[[bool, str], Any]

_NOT_FOUND = {"BadNodeIdUnknown", "BadNodeIdInvalid", "BadAttributeIdInvalid"}
_REFUSED = {"BadNotWritable", "BadUserAccessDenied", "BadTypeMismatch", "BadWriteNotSupported", "BadOutOfRange",
            "BadNotExecutable", "BadInvalidArgument", "BadArgumentsMissing", "BadTooManyArguments"}
_NODE_CLASS = {"object": ua.NodeClass.Object, "method": ua.NodeClass.Method}


class Sample(NamedTuple):
    """The latest value of a subscribed signal and its source timestamp (Unix seconds, the PLC's clock)."""

    value: Any
    timestamp: float | None


def _coerce(signal: str, value: Any) -> Any:
    """A value read from the PLC as the table's Python type; PlcError if it cannot be one."""
    kind = SIGNALS[signal].type
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise PlcError(f"PLC signal {signal!r} gave {value!r} ({type(value).__name__}), expected {getattr(kind, '__name__', kind)}")


def move_result(result: Any) -> tuple[Any, bool]:
    """(accepted, in position) from the Move method's outputs: `Boolean accepted` alone (a PLC whose move runs on
    after the call), or `[accepted, in_position]` (the simulator's Move; on a timeline it returns on arrival)."""
    if isinstance(result, (list, tuple)):
        accepted = result[0] if result else None
        return accepted, len(result) > 1 and result[1] is True and accepted is True
    return result, False


class PlcDriver:
    """The machine's PLC over OPC UA: typed reads/writes of named signals, commands, positioner moves, snapshot."""

    def __init__(
        self,
        endpoint: str,
        nodes: dict[str, str],
        *,
        security: PlcSecurity | None = None,
        wire_log: WireLog | None = None,
        timeout_s: float = 2.0,
        link_check_s: float = 0.5,
        clock_speed: float = 1.0,
        publishing_interval_ms: float = 20.0,
        reconnect_backoff: tuple[float, float] = (0.2, 5.0),
        link: Any = None,  # a stand-in for the OpcUaLink, e.g. hal.transport.opcua_replay.ReplayOpcUaLink in tests
        pause: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        """`pause(real_s)`: how move_positioner waits between reads when given (a simulator's shared timeline moves
        simulated time there); by default it waits for the next data change or `real_s`, whichever comes first.
        `link_check_s`: real seconds between the link's health probes, each of which must be answered within it (a
        dead but unclosed connection is found within about twice that)."""
        validate_nodes(nodes)
        if not clock_speed > 0:
            raise PlcError(f"clock_speed must be > 0, got {clock_speed!r}")
        self.nodes = dict(nodes)
        self.clock_speed = clock_speed
        self._pause = pause
        self.publishing_interval_ms = publishing_interval_ms
        self.log = structlog.get_logger("hal.plc").bind(device="plc", endpoint=endpoint)
        self._link: Any = link or OpcUaLink(
            endpoint, device="plc", security=security, wire_log=wire_log, timeout_s=timeout_s,
            watchdog_s=link_check_s, reconnect_backoff=reconnect_backoff, on_link=self._link_changed,
        )
        self._by_node = {node_id: name for name, node_id in self.nodes.items()}
        self._latest: dict[str, Sample] = {}
        self._change_callbacks: list[ChangeCallback] = []
        self._link_callbacks: list[LinkCallback] = []
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- connection --------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the OPC UA session with the PLC is up."""
        return self._link.connected

    async def connect(self) -> None:
        """Connect, check every configured node exists with the right kind and type, subscribe the monitored ones."""
        try:
            await self._link.connect()
        except LinkError as exc:
            raise self._map(exc, "connect") from exc
        try:
            await self._check_nodes()
            await self._link.subscribe(
                [self.nodes[name] for name in subscribed_signals()], self._on_data, self.publishing_interval_ms
            )
            await self._initial_values()
        except BaseException as exc:
            await self.close()
            if isinstance(exc, LinkError):
                raise self._map(exc, "connect") from exc
            raise

    async def close(self) -> None:
        """Close the session and cancel every task the driver or its link started."""
        await self._link.close()
        await cancel_and_wait(list(self._tasks))
        self._tasks.clear()

    async def __aenter__(self) -> "PlcDriver":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _initial_values(self) -> None:
        """Wait for the first notification of every subscribed signal, so snapshot() is complete after connect()."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._link.timeout_s
        wanted = set(subscribed_signals())
        while not wanted <= set(self._latest):
            changed = self._changed
            remaining = deadline - loop.time()
            if remaining <= 0:
                missing = ", ".join(sorted(wanted - set(self._latest)))
                raise PlcTimeout(f"PLC connect: no initial value for {missing} within {self._link.timeout_s} s")
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def _check_nodes(self) -> None:
        """PlcBadNode naming the signal if the server lacks a configured node or it is of the wrong kind/type."""
        names = list(self.nodes)
        classes = await self._link.read_data([self.nodes[n] for n in names], ua.AttributeIds.NodeClass)
        for name, dv in zip(names, classes):
            node_id = self.nodes[name]
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                raise PlcBadNode(name, node_id, f"the server has no such node ({dv.StatusCode.name})")
            node_class = ua.NodeClass(dv.Value.Value) if dv.Value is not None else None
            want = _NODE_CLASS.get(SIGNALS[name].access, ua.NodeClass.Variable)
            if node_class != want:
                got = node_class.name if node_class is not None else "nothing"
                raise PlcBadNode(name, node_id, f"is a {got} node, expected a {want.name}")
        variables = readable_signals()
        values = await self._link.read_data([self.nodes[n] for n in variables])
        for name, dv in zip(variables, values):
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                raise PlcBadNode(name, self.nodes[name], f"cannot be read ({dv.StatusCode.name})")
            value = dv.Value.Value if dv.Value is not None else None
            try:
                _coerce(name, value)
            except PlcError:
                expected = getattr(SIGNALS[name].type, "__name__", "?")
                raise PlcBadNode(name, self.nodes[name], f"holds {value!r}, expected a {expected}") from None

    # -- callbacks ---------------------------------------------------------------------------------------------
    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call callback(signal, value, timestamp) on every change of a subscribed signal; returns an unregister."""
        self._change_callbacks.append(callback)
        return lambda: self._change_callbacks.remove(callback) if callback in self._change_callbacks else None

    def on_link(self, callback: LinkCallback) -> Callable[[], None]:
        """Call callback(up, reason) when the link goes down (at once) and when it is back; returns an unregister."""
        self._link_callbacks.append(callback)
        return lambda: self._link_callbacks.remove(callback) if callback in self._link_callbacks else None

    def _run(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            result = callback(*args)
        except Exception:
            self.log.exception("plc.callback_failed")
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_data(self, node_id: str, value: Any, timestamp: float | None) -> None:
        signal = self._by_node.get(node_id)
        if signal is None:
            return
        try:
            value = _coerce(signal, value)
        except PlcError as exc:
            self.log.warning("plc.bad_value", signal=signal, error=str(exc))
            return
        self._latest[signal] = Sample(value, timestamp)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for callback in list(self._change_callbacks):
            self._run(callback, signal, value, timestamp)

    def _link_changed(self, up: bool, reason: str) -> None:
        self.log.info("plc.link", up=up, reason=reason)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for callback in list(self._link_callbacks):
            self._run(callback, up, reason)

    # -- reads and writes --------------------------------------------------------------------------------------
    def _map(self, exc: LinkError, what: str, signal: str = "") -> PlcError:
        if isinstance(exc, LinkTimeout):
            return PlcTimeout(f"PLC {what}: {exc}")
        if isinstance(exc, LinkRefused):
            return PlcAuthRefused(f"PLC {what}: {exc}")
        if isinstance(exc, LinkClosed):
            return PlcLinkLost(f"PLC {what}: {exc}")
        if isinstance(exc, LinkStatusError):
            if exc.status in _NOT_FOUND and signal:
                return PlcBadNode(signal, self.nodes[signal], f"the server has no such node ({exc.status})")
            if exc.status in _REFUSED:
                return PlcWriteRefused(f"PLC {what}: refused by the PLC ({exc.status})")
        return PlcError(f"PLC {what}: {exc}")

    def _signal(self, signal: str, *accesses: str) -> str:
        if signal not in SIGNALS:
            raise PlcError(f"unknown PLC signal {signal!r}; known: {', '.join(SIGNALS)}")
        if SIGNALS[signal].access not in accesses:
            raise PlcError(f"PLC signal {signal!r} is {SIGNALS[signal].access}-only here; allowed: {', '.join(accesses)}")
        return self.nodes[signal]

    async def read(self, signal: str) -> Any:
        """The current value of one variable signal, read from the PLC now (typed per the signal table)."""
        node_id = self._signal(signal, *VARIABLE_ACCESS)
        try:
            value = await self._link.read(node_id)
        except LinkError as exc:
            raise self._map(exc, f"read {signal}", signal) from exc
        return _coerce(signal, value)

    async def read_many(self, signals: list[str]) -> dict[str, Any]:
        """Several signals in one request (one round trip)."""
        node_ids = [self._signal(s, *VARIABLE_ACCESS) for s in signals]
        try:
            values = await self._link.read_values(node_ids)
        except LinkError as exc:
            bad = self._by_node.get(getattr(exc, "node_id", ""), "")
            raise self._map(exc, f"read {', '.join(signals)}", bad) from exc
        return {s: _coerce(s, v) for s, v in zip(signals, values)}

    async def write(self, signal: str, value: Any) -> None:
        """Write a command signal (lamp_command, door_lock_command) with the table's type."""
        node_id = self._signal(signal, "write")
        kind = SIGNALS[signal].type
        assert kind is not None
        if type(value) is not kind and not (kind is float and type(value) is int):
            raise PlcError(f"PLC signal {signal!r} takes a {kind.__name__}, got {value!r}")
        try:
            await self._link.write(node_id, kind(value), VARIANT_TYPES[kind])
        except LinkError as exc:
            raise self._map(exc, f"write {signal}={value!r}", signal) from exc

    async def call_method(self, object_signal: str, method_signal: str, *args: ua.Variant) -> Any:
        """Call a method of the signal table (e.g. line_claim on line_object); PlcWriteRefused if refused."""
        obj, method = self._signal(object_signal, "object"), self._signal(method_signal, "method")
        try:
            return await self._link.call(obj, method, *args)
        except LinkError as exc:
            raise self._map(exc, f"call {method_signal}", method_signal) from exc

    async def set_lamp(self, on: bool) -> None:
        """Command the UV lamp on or off (feedback: lamp_on, irradiance)."""
        await self.write("lamp_command", bool(on))

    async def set_door_lock(self, locked: bool) -> None:
        """Command the enclosure door lock (feedback: door_locked)."""
        await self.write("door_lock_command", bool(locked))

    def snapshot(self) -> dict[str, Sample]:
        """Latest value and source timestamp of every subscribed signal received so far."""
        return dict(self._latest)

    # -- positioner --------------------------------------------------------------------------------------------
    async def move_positioner(self, position: int, timeout_s: float = 10.0, *, clock_speed: float | None = None) -> None:
        """Move the vial positioner to `position` and wait until it reports in position there (at once when the
        Move method's second output, in position, says so: `move_result`).

        `timeout_s` is in (simulated) machine seconds, divided by `clock_speed` (default: the driver's) for the
        real wait. PositionerFault if the positioner reports a fault, PositionerTimeout if it does not arrive,
        PlcWriteRefused if the PLC does not accept the move.
        """
        if isinstance(position, bool) or not isinstance(position, int):
            raise PlcError(f"positioner position must be an int, got {position!r}")
        speed = clock_speed or self.clock_speed
        obj, method = self.nodes["positioner_object"], self.nodes["positioner_move"]
        try:
            result = await self._link.call(obj, method, ua.Variant(position, ua.VariantType.Int32))
        except LinkError as exc:
            raise self._map(exc, f"Move({position})", "positioner_move") from exc
        accepted, arrived = move_result(result)
        if accepted is not True:
            raise PlcWriteRefused(f"PLC refused Move({position}) (accepted={accepted!r})")
        if arrived:
            return  # the PLC's Move completed the move (a timeline's simulator, or a PLC whose Move waits)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s / speed
        paused = 0.0  # with a pause hook, the timeout counts the pauses (simulated time), not the reads' real time
        # a data change of InPosition wakes us (the PLC publishes it on arrival); a read every `poll` real s covers
        # the publishing interval at high clock speeds, where the move itself is shorter than that interval
        poll = max(0.001, min(0.05, 0.5 / speed))
        watched = ["positioner_fault", "positioner_in_position", "positioner_current"]
        if self._pause is not None:  # the machine's time (a shared timeline): a move takes time, so pause before the
            paused += poll            # first read; the pause ends at the arrival if the PLC announced it
            await self._pause(poll)
        while True:
            changed = self._changed
            state = await self.read_many(watched)
            if state["positioner_fault"]:
                raise PositionerFault(f"vial positioner fault while moving to {position} (at {state['positioner_current']})")
            if state["positioner_in_position"] and state["positioner_current"] == position:
                return
            remaining = deadline - loop.time() if self._pause is None else timeout_s / speed - paused
            if remaining <= 0:
                raise PositionerTimeout(
                    f"vial positioner not in position {position} within {timeout_s} s "
                    f"(current {state['positioner_current']}, in position {state['positioner_in_position']})"
                )
            if self._pause is not None:
                paused += min(remaining, poll)
                await self._pause(min(remaining, poll))
                continue
            try:
                await asyncio.wait_for(changed.wait(), min(remaining, poll))
            except asyncio.TimeoutError:
                pass

