"""The wire log: every exchange with a device as an event, kept in memory and optionally appended to a JSONL file.

A recorded log replays through `ReplayLink`, which stands in for a SerialLink in tests: it answers each request with
the reply recorded for it and fails loudly when the driver sends something the recording did not.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

from hal.transport.errors import LinkTimeout


class WireEvent:
    """One thing on the wire. dir: tx (host -> device), rx (device -> host), call / result / error (OPC UA).

    `data` is text: bytes as hex for serial, a JSON description for OPC UA calls. An event recorded on the hot path
    keeps what it was given and makes that text when it is first read (the log, a test, a replay), so an exchange
    costs no JSON encoding (about 6 % of the controller's CPU in a fill, 2026-12-01). Recorders pass values they do
    not change afterwards (each call site builds a fresh dict)."""

    __slots__ = ("t", "device", "dir", "_data", "_raw")

    def __init__(self, t: float, device: str, dir: str, data: str | None = None, *, raw: Any = None) -> None:
        """An event with its text `data`, or with the `raw` bytes or JSON-able value the text is made from."""
        self.t, self.device, self.dir = t, device, dir
        self._data: str | None = data
        self._raw = raw

    @property
    def data(self) -> str:
        """The event's text, made on first use."""
        text = self._data
        if text is None:  # two readers at once both make the same text (the raw value is kept, never cleared)
            raw = self._raw
            text = self._data = raw.hex() if isinstance(raw, bytes) else json.dumps(raw, default=str, sort_keys=True)
        return text

    def as_dict(self) -> dict[str, Any]:
        """The JSONL form: t, device, dir, data."""
        return {"t": self.t, "device": self.device, "dir": self.dir, "data": self.data}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WireEvent):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        return f"WireEvent(t={self.t!r}, device={self.device!r}, dir={self.dir!r}, data={self.data!r})"

    @staticmethod
    def from_json(line: str) -> "WireEvent":
        return WireEvent(**json.loads(line))


class WireLog:
    """Thread-safe recorder of WireEvents; keeps the last `keep` in memory, all of them in `path` if given."""

    def __init__(self, path: Path | str | None = None, keep: int = 10_000,
                 now: Callable[[], float] = time.time) -> None:
        self.path = Path(path) if path else None
        self.now = now  # the controller passes its shared clock, so wire events line up with the record
        self.events: deque[WireEvent] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8") if self.path else None

    def record(self, device: str, direction: str, data: bytes | Any) -> None:
        """Keep one exchange (bytes for serial, a JSON-able value for OPC UA); its text is made when first read."""
        event = WireEvent(self.now(), device, direction, raw=bytes(data) if isinstance(data, bytearray) else data)
        with self._lock:
            self.events.append(event)
            if self._file:
                self._file.write(json.dumps(event.as_dict()) + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file:
                self._file.close()
                self._file = None

    @staticmethod
    def load(path: Path | str) -> list[WireEvent]:
        """The events of a wire-log file; a last line torn by a crash is left out."""
        lines = [line for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines() if line]
        events = []
        for i, line in enumerate(lines):
            try:
                events.append(WireEvent.from_json(line))
            except (ValueError, TypeError):
                if i < len(lines) - 1:
                    raise
        return events


class ReplayMismatch(AssertionError):
    """The driver sent bytes the recording did not contain at this point."""


class ReplayLink:
    """A SerialLink stand-in that plays back a recorded serial conversation of one device."""

    def __init__(self, events: Iterable[WireEvent], device: str) -> None:
        self.device = device
        self._events = [e for e in events if e.device == device and e.dir in ("tx", "rx")]
        self._i = 0
        self.is_open = True

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def exchange(self, request: bytes, *, terminator: bytes, extra: int = 0, timeout: float = 1.0) -> bytes:
        if self._i >= len(self._events) or self._events[self._i].dir != "tx":
            raise ReplayMismatch(f"{self.device}: unexpected request {request!r} after the end of the recording")
        expected = bytes.fromhex(self._events[self._i].data)
        if expected != request:
            raise ReplayMismatch(f"{self.device}: sent {request!r}, recording has {expected!r}")
        self._i += 1
        if self._i < len(self._events) and self._events[self._i].dir == "rx":
            reply = bytes.fromhex(self._events[self._i].data)
            self._i += 1
            return reply
        raise LinkTimeout("no reply in the recording", device=self.device)

    @property
    def finished(self) -> bool:
        return self._i >= len(self._events)
