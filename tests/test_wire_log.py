"""The wire log keeps what a driver gave it and makes each event's text when it is first read; the text and the
JSONL file are what the eager encoding gave."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hal.transport.wirelog import WireEvent, WireLog

JSONABLE = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                   max_size=3), max_leaves=10)


@given(st.one_of(st.binary(max_size=32), JSONABLE))
def test_an_event_reads_as_the_eager_text(data: Any) -> None:
    log = WireLog(now=lambda: 1.5)
    log.record("pump", "tx", bytearray(data) if isinstance(data, bytes) else data)
    (event,) = log.events
    eager = data.hex() if isinstance(data, bytes) else json.dumps(data, default=str, sort_keys=True)
    assert event.data == eager
    assert event == WireEvent(1.5, "pump", "tx", eager)
    assert WireEvent.from_json(json.dumps(event.as_dict())) == event


def test_the_file_has_every_event_as_jsonl_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "wire.jsonl"
    log = WireLog(path, now=lambda: 2.0)
    log.record("pump", "tx", b"/1Q\r")
    log.record("plc", "call", {"op": "read", "nodes": ["ns=2;s=Door.Closed"]})
    log.close()
    loaded = WireLog.load(path)
    assert loaded == list(log.events)
    assert [e.data for e in loaded] == ["2f31510d", '{"nodes": ["ns=2;s=Door.Closed"], "op": "read"}']


def test_readers_in_two_threads_see_the_same_text() -> None:
    log = WireLog()
    for i in range(200):
        log.record("plc", "result", {"op": "read", "value": i})
    texts: list[list[str]] = [[], []]

    def read(into: list[str]) -> None:
        into.extend(e.data for e in list(log.events))

    threads = [threading.Thread(target=read, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert texts[0] == texts[1] == [json.dumps({"op": "read", "value": i}, sort_keys=True) for i in range(200)]
