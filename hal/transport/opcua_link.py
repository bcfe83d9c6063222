"""One OPC UA client connection (asyncua): deadlines, typed errors, the wire log, link-loss detection and reconnect.

Every read, write, method call and subscription goes through here, so every one is timed, logged (structlog and the
wire log) and mapped to hal.transport errors. A lost link is reported at once through `on_link(False, reason)`
(asyncua's connection supervisor sees the socket close or a failed keep-alive probe; a subscription's bad status
counts too), then a background task reconnects with exponential backoff, re-creates the subscriptions and reports
`on_link(True, ...)`. Calls made while the link is down fail fast with LinkClosed instead of waiting.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import structlog
from asyncua import Client, ua

from hal.transport.errors import LinkClosed, LinkError, LinkTimeout
from hal.transport.opcua_subscriptions import MONITORED_QUEUE_SIZE, OpcUaSubscriptions
from hal.transport.opcua_values import (_AUTH_STATUSES, ClientSecurity, DataCallback, LinkCallback, LinkRefused,
                                        LinkStatusError, _jsonable, _SubSpec, source_time, status_name)
from hal.transport.tasks import cancel_and_wait
from hal.transport.wirelog import WireLog

__all__ = ["MONITORED_QUEUE_SIZE", "ClientSecurity", "DataCallback", "LinkCallback", "LinkRefused", "LinkStatusError",
           "OpcUaLink", "source_time", "status_name"]

T = TypeVar("T")


class OpcUaLink(OpcUaSubscriptions):
    """One asyncua Client with deadlines, typed errors, the wire log, link watch and automatic reconnect."""

    def __init__(
        self,
        endpoint: str,
        *,
        device: str = "plc",
        security: ClientSecurity | None = None,
        wire_log: WireLog | None = None,
        timeout_s: float = 2.0,
        reconnect_backoff: tuple[float, float] = (0.2, 5.0),
        watchdog_s: float = 0.5,
        on_link: LinkCallback | None = None,
    ) -> None:
        if not endpoint.startswith("opc.tcp://"):
            raise ValueError(f"OPC UA endpoint must start with opc.tcp://, got {endpoint!r}")
        self.endpoint = endpoint
        self.device = device
        self.security = security
        self.wire_log = wire_log
        self.timeout_s = timeout_s
        self.backoff_min, self.backoff_max = reconnect_backoff
        self.watchdog_s = watchdog_s
        self.on_link = on_link
        self.log = structlog.get_logger("hal.opcua").bind(device=device, endpoint=endpoint)
        self._client: Client | None = None
        self._up = False
        self._closing = False
        self._lost = asyncio.Event()
        self._lost_reason = ""
        self._supervisor: asyncio.Task[None] | None = None
        self._subs: list[_SubSpec] = []
        self._handles = itertools.count(1)
        self._callback_tasks: set[asyncio.Task[Any]] = set()

    # -- state -------------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the session is up (False while down, reconnecting or closed)."""
        return self._up and self._client is not None

    def _wire(self, direction: str, data: dict[str, Any]) -> None:
        if self.wire_log is not None:
            self.wire_log.record(self.device, direction, data)

    def _report(self, up: bool, reason: str) -> None:
        if self._up == up:
            return
        self._up = up
        self.log.info("opcua.link", up=up, reason=reason)
        self._wire("result" if up else "error", {"op": "link", "up": up, "reason": reason})
        if self.on_link is not None:
            self._invoke(self.on_link, up, reason)

    def _invoke(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run a user callback; an async one becomes a task the link owns (cancelled at close)."""
        try:
            result = callback(*args)
        except Exception:
            self.log.exception("opcua.callback_failed", callback=getattr(callback, "__name__", repr(callback)))
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("opcua.callback_failed", error=repr(task.exception()))

    # -- connect / close ---------------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the session (LinkClosed / LinkTimeout / LinkRefused if it cannot) and start watching it."""
        if self._client is not None:
            return
        self._closing = False
        self._wire("call", {"op": "connect", "endpoint": self.endpoint})
        try:
            client = await self._open_client()
        except LinkError as exc:
            self._wire("error", {"op": "connect", "error": str(exc)})
            raise
        self._client = client
        self._lost.clear()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"opcua-link-{self.device}")
        self._wire("result", {"op": "connect"})
        self._report(True, "connected")

    async def close(self) -> None:
        """Close the session and cancel every task the link started (supervisor, consumers, callbacks)."""
        self._closing = True
        if self._supervisor is not None:
            await cancel_and_wait([self._supervisor])
            self._supervisor = None
        client, self._client = self._client, None
        await self._drop_subscriptions()
        if client is not None:
            await self._dispose(client)
        await cancel_and_wait(list(self._callback_tasks))
        self._callback_tasks.clear()
        if self._up:
            self._up = False
            self.log.info("opcua.link", up=False, reason="closed")
            self._wire("result", {"op": "close"})

    async def _open_client(self) -> Client:
        """A connected asyncua Client, or a typed LinkError; never leaves a half-open client behind."""
        client = Client(self.endpoint, timeout=self.timeout_s, watchdog_intervall=self.watchdog_s)
        client.name = client.description = f"fillfinish {self.device}"

        async def lost(exc: Exception) -> None:
            self._mark_lost(client, f"connection lost: {exc!r}")

        client.connection_lost_callback = lost
        try:
            if self.security is not None:
                await asyncio.wait_for(self.security.apply(client), self.timeout_s * 2)
            await asyncio.wait_for(client.connect(), self.timeout_s * 2)
        except BaseException as exc:
            await self._dispose(client)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise self._map(exc, "connect") from exc
        return client

    async def _dispose(self, client: Client) -> None:
        """Disconnect a client and wait for its internal tasks, whatever state its socket is in."""
        try:
            await asyncio.wait_for(client.disconnect(), self.timeout_s)
        except (asyncio.TimeoutError, ConnectionError, OSError, ua.UaError) as exc:
            self.log.debug("opcua.dispose", error=repr(exc))
            client.disconnect_socket()
        except Exception as exc:  # a half-connected client can fail in unexpected ways; it is being dropped
            self.log.debug("opcua.dispose", error=repr(exc))
            client.disconnect_socket()

    # -- link watch and reconnect ------------------------------------------------------------------------------
    def _mark_lost(self, client: Client | None, reason: str) -> None:
        """Any detector (socket closed, probe failed, subscription status) reports a loss here: on_link at once."""
        if self._closing or client is not self._client or client is None:
            return
        self._lost_reason = reason
        self._report(False, reason)
        self._lost.set()

    async def _supervise(self) -> None:
        """Wait for a loss; then drop the old client and reconnect with backoff until the link is up again."""
        while not self._closing:
            await self._lost.wait()
            self._lost.clear()
            old, self._client = self._client, None
            await self._drop_subscriptions()
            if old is not None:
                await self._dispose(old)
            delay = self.backoff_min
            attempt = 0
            while not self._closing:
                attempt += 1
                try:
                    client = await self._open_client()
                except LinkError as exc:
                    self.log.info("opcua.reconnect_failed", attempt=attempt, retry_in_s=delay, error=str(exc))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.backoff_max)
                    continue
                self._client = client
                try:
                    for spec in self._subs:
                        await self._start_subscription(client, spec)
                except (LinkError, ConnectionError, OSError, asyncio.TimeoutError, ua.UaError) as exc:
                    self.log.info("opcua.resubscribe_failed", attempt=attempt, error=repr(exc))
                    self._client = None
                    await self._drop_subscriptions()
                    await self._dispose(client)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.backoff_max)
                    continue
                self._report(True, f"reconnected after {attempt} attempt(s)")
                break

    # -- calls -------------------------------------------------------------------------------------------------
    def _require(self, op: str) -> Client:
        if self._client is None or not self._up:
            why = "closed" if self._closing or self._supervisor is None else f"down ({self._lost_reason})"
            self._wire("error", {"op": op, "error": f"link {why}"})
            raise LinkClosed(f"OPC UA link {why}", device=self.device)
        return self._client

    def _map(self, exc: BaseException, op: str, node_id: str = "") -> LinkError:
        """Translate what asyncua raises into our typed transport errors."""
        where = f"{op} {node_id}".strip()
        if isinstance(exc, LinkError):
            return exc
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            return LinkTimeout(f"{where}: no answer within {self.timeout_s:.3f} s", device=self.device)
        if isinstance(exc, ua.UaStatusCodeError):
            name = status_name(exc.code)
            if op == "connect" and exc.code in _AUTH_STATUSES:
                return LinkRefused(f"{where}: refused by the server: {name}", device=self.device)
            return LinkStatusError(f"{where}: {name}", device=self.device, status=name, node_id=node_id)
        if isinstance(exc, (ConnectionError, OSError)):
            return LinkClosed(f"{where}: {exc!r}", device=self.device)
        if isinstance(exc, ua.UaError) and ("certificate" in str(exc).lower() or "No matching endpoints" in str(exc)):
            return LinkRefused(f"{where}: {exc}", device=self.device)
        return LinkError(f"{where}: {exc!r}", device=self.device)

    async def _call(self, op: str, detail: dict[str, Any], node_id: str, work: Callable[[Client], Awaitable[T]]) -> T:
        client = self._require(op)
        self._wire("call", {"op": op, **detail})
        t0 = time.perf_counter()
        try:
            result = await asyncio.wait_for(work(client), self.timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = self._map(exc, op, node_id)
            ms = round((time.perf_counter() - t0) * 1000, 3)
            self._wire("error", {"op": op, **detail, "error": str(err), "ms": ms})
            self.log.warning("opcua.error", op=op, node=node_id, error=str(err), ms=ms)
            if isinstance(err, LinkClosed):
                self._mark_lost(client, str(err))
            raise err from exc
        ms = round((time.perf_counter() - t0) * 1000, 3)
        self._wire("result", {"op": op, **detail, "value": _jsonable(result), "ms": ms})
        self.log.debug("opcua.call", op=op, node=node_id, ms=ms)
        return result

    async def read(self, node_id: str) -> Any:
        """The value of one variable (LinkStatusError on a bad status such as BadNodeIdUnknown)."""
        return (await self.read_values([node_id]))[0]

    async def read_values(self, node_ids: Sequence[str]) -> list[Any]:
        """The values of several variables in one request; raises on the first bad status."""
        values = await self.read_data(node_ids)
        out = []
        for node_id, dv in zip(node_ids, values):
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                name = status_name(dv.StatusCode.value)
                raise LinkStatusError(f"read {node_id}: {name}", device=self.device, status=name, node_id=node_id)
            out.append(dv.Value.Value if dv.Value is not None else None)
        return out

    async def read_data(
        self, node_ids: Sequence[str], attribute: ua.AttributeIds = ua.AttributeIds.Value
    ) -> list[ua.DataValue]:
        """Raw DataValues (value, status, timestamps) of one attribute of several nodes; per-node status not raised."""
        ids = [ua.NodeId.from_string(n) for n in node_ids]

        async def work(client: Client) -> list[ua.DataValue]:
            params = ua.ReadParameters()
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            for nid in ids:
                rv = ua.ReadValueId()
                rv.NodeId = nid
                rv.AttributeId = attribute
                params.NodesToRead.append(rv)
            return await client.uaclient.read(params)

        detail = {"nodes": list(node_ids), "attribute": attribute.name}
        return await self._call("read", detail, ",".join(node_ids), work)

    async def write(self, node_id: str, value: Any, variant_type: ua.VariantType) -> None:
        """Write one variable's value as `variant_type` (LinkStatusError if the server refuses it)."""
        nid = ua.NodeId.from_string(node_id)

        async def work(client: Client) -> None:
            dv = ua.DataValue(ua.Variant(value, variant_type))
            await client.get_node(nid).write_attribute(ua.AttributeIds.Value, dv)

        await self._call("write", {"node": node_id, "value": value, "type": variant_type.name}, node_id, work)

    async def call(self, object_id: str, method_id: str, *args: ua.Variant | Any) -> Any:
        """Call a method on an object node; returns its single output (or a list when it has several)."""
        oid, mid = ua.NodeId.from_string(object_id), ua.NodeId.from_string(method_id)

        async def work(client: Client) -> Any:
            return await client.get_node(oid).call_method(mid, *args)

        shown = [a.Value if isinstance(a, ua.Variant) else a for a in args]
        return await self._call("call", {"object": object_id, "method": method_id, "args": shown}, method_id, work)
