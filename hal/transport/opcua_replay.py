"""Replay of a recorded OPC UA conversation: stands in for an OpcUaLink in tests of code above the link.

The wire log records each call as a `call` event ({op, nodes | node | object+method, ...}) followed by its `result`
(values as JSON) or `error`. `ReplayOpcUaLink` answers the same calls in the same order with the recorded results,
and fails loudly (ReplayMismatch) when the code under test asks for something the recording did not.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from hal.transport.errors import LinkError
from hal.transport.wirelog import ReplayMismatch, WireEvent


class ReplayOpcUaLink:
    """read / read_values / write / call from a recording of one device's OPC UA calls."""

    timeout_s = 1.0

    def __init__(self, events: Iterable[WireEvent], device: str = "plc") -> None:
        self.device = device
        recorded = [(e, json.loads(e.data)) for e in events
                    if e.device == device and e.dir in ("call", "result", "error")]
        self._pairs: list[tuple[dict[str, Any], WireEvent]] = []
        used: set[int] = set()
        for i, (event, request) in enumerate(recorded):
            if event.dir != "call" or request.get("op") not in ("read", "write", "call"):
                continue  # connect-time checks and subscriptions are not replayed
            for j in range(i + 1, len(recorded)):  # its answer: the next unused result or error of the same request
                answer, data = recorded[j]
                if j not in used and answer.dir != "call" and _same_request(data, request):
                    used.add(j)
                    self._pairs.append((request, answer))
                    break
        self._i = 0
        self.connected = True

    def _next(self, request: dict[str, Any]) -> Any:
        if self._i >= len(self._pairs):
            raise ReplayMismatch(f"{self.device}: unexpected {request} after the end of the recording")
        recorded, answer = self._pairs[self._i]
        if any(recorded.get(k) != v for k, v in request.items()):
            raise ReplayMismatch(f"{self.device}: asked {request}, recording has {recorded}")
        self._i += 1
        data = json.loads(answer.data)
        if answer.dir == "error":
            raise LinkError(data.get("error", "recorded error"), device=self.device)
        return data.get("value")

    @property
    def finished(self) -> bool:
        return self._i >= len(self._pairs)

    async def read(self, node_id: str) -> Any:
        return (await self.read_values([node_id]))[0]

    async def read_values(self, node_ids: Sequence[str]) -> list[Any]:
        return list(self._next({"op": "read", "nodes": list(node_ids), "attribute": "Value"}))

    async def write(self, node_id: str, value: Any, variant_type: Any) -> None:
        self._next({"op": "write", "node": node_id, "value": value})

    async def call(self, object_id: str, method_id: str, *args: Any) -> Any:
        shown = [getattr(a, "Value", a) for a in args]
        return self._next({"op": "call", "object": object_id, "method": method_id, "args": shown})

    async def close(self) -> None:
        self.connected = False


_IDENTITY = ("op", "nodes", "node", "object", "method", "attribute", "args")


def _same_request(answer: dict[str, Any], request: dict[str, Any]) -> bool:
    """An answer event repeats its request's identity (its "value" is the result, not the written value)."""
    return all(answer.get(k) == request.get(k) for k in _IDENTITY if k in request)
