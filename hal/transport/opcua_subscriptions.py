"""The OPC UA link's subscriptions: created with a queue per monitored item, consumed in order into the callback,
kept as specs so a reconnect re-creates them; a bad subscription status counts as a lost link."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from typing import Any, Callable

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent, Subscription

from hal.transport.errors import LinkError
from hal.transport.opcua_values import DataCallback, LinkStatusError, _jsonable, _SubSpec, source_time, status_name

MONITORED_QUEUE_SIZE = 64  # changes a monitored item keeps between two publishes (the server drops the oldest beyond)


class OpcUaSubscriptions:
    """Mixin of OpcUaLink (its state and call layer in hal/transport/opcua_link.py)."""

    device: str
    timeout_s: float
    _subs: list[_SubSpec]
    _handles: itertools.count[int]
    _require: Callable[[str], Client]
    _map: Callable[..., LinkError]
    _wire: Callable[[str, dict[str, Any]], None]
    _invoke: Callable[..., None]
    _mark_lost: Callable[[Client | None, str], None]

    async def subscribe(
        self, node_ids: Iterable[str], callback: DataCallback, publishing_interval_ms: float = 20
    ) -> int:
        """Monitor `node_ids`; callback(node_id, value, source_time) on every change, kept across reconnects."""
        spec = _SubSpec(next(self._handles), list(node_ids), callback, publishing_interval_ms)
        client = self._require("subscribe")
        await self._start_subscription(client, spec)
        self._subs.append(spec)
        return spec.handle

    async def _start_subscription(self, client: Client, spec: _SubSpec) -> None:
        """Create `spec`'s subscription on `client` (a queue per item) and start consuming it; typed errors."""
        detail = {"op": "subscribe", "nodes": spec.node_ids, "interval_ms": spec.interval_ms}
        self._wire("call", detail)
        try:
            sub = await asyncio.wait_for(
                client.create_subscription(
                    spec.interval_ms, handler=None, queue_maxsize=100_000, overflow=OverflowPolicy.WARN
                ),
                self.timeout_s,
            )
            nodes = [client.get_node(n) for n in spec.node_ids]
            spec.nodes_by_id = {node.nodeid.to_string(): text for node, text in zip(nodes, spec.node_ids)}
            spec.live = sub
            # a queue per item: every change between two publishes arrives (each particle sample, not the last)
            results = await asyncio.wait_for(
                sub.subscribe_data_change(nodes, sampling_interval=0.0, queuesize=MONITORED_QUEUE_SIZE), self.timeout_s
            )
        except Exception as exc:
            err = self._map(exc, "subscribe")
            self._wire("error", {**detail, "error": str(err)})
            raise err from exc
        bad = [(n, r) for n, r in zip(spec.node_ids, results) if isinstance(r, ua.StatusCode)]
        if bad:
            node_id, status = bad[0]
            name = status_name(status.value)
            self._wire("error", {**detail, "error": f"{node_id}: {name}"})
            raise LinkStatusError(f"subscribe {node_id}: {name}", device=self.device, status=name, node_id=node_id)
        self._wire("result", detail)
        spec.task = asyncio.create_task(self._consume(client, spec, sub), name=f"opcua-sub-{self.device}")

    async def _consume(self, client: Client, spec: _SubSpec, sub: Subscription) -> None:
        """Deliver one subscription's notifications in order; a bad subscription status means the link is lost."""
        async for event in sub:
            if isinstance(event, DataChangeEvent):
                node_id = spec.nodes_by_id.get(event.node.nodeid.to_string(), event.node.nodeid.to_string())
                stamp = source_time(event.data.monitored_item.Value)
                self._wire("result", {"op": "notify", "node": node_id, "value": _jsonable(event.value), "t": stamp})
                self._invoke(spec.callback, node_id, event.value, stamp)
            elif isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                if status is not None and not status.is_good():
                    self._mark_lost(client, f"subscription status {status.name}")

    async def _drop_subscriptions(self) -> None:
        """Stop consuming (the subscriptions die with their session); keeps the specs for re-creation."""
        tasks = [s.task for s in self._subs if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for spec in self._subs:
            spec.task = None
            spec.live = None
