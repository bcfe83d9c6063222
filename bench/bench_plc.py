"""PLC reads and notifications: PlcDriver vs a raw asyncua Client, against the simulated PLC, same server, same run.

The PlcServer (sim) runs in its own asyncio loop on a background thread, as `sim.runner.Simulator` runs it; both
clients are connected at once (so both see the same server load, including the driver's own 20 ms subscription)
and are measured in alternating blocks. Figures:
  read      one variable: raw `node.read_value()` vs `PlcDriver.read(signal)` (deadline, typed errors, wire log).
  read x3   the positioner poll of `move_positioner`: raw `client.read_values(3 nodes)` vs `PlcDriver.read_many`.
  notify    a value written on the server until the client's callback sees it: a raw asyncua subscription (same
            20 ms publishing interval) vs `PlcDriver.on_change`; both subscribed to the same change.
Run: .venv/bin/python -m bench.bench_plc [--n 300] [--notify 200]
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any, Awaitable, Callable

from asyncua import Client, ua

from bench.common import Figure, Stats, base_parser, fmt, positive_int, print_figures, print_table, quiet_logging
from bench.common import write_figures
from hal.plc.driver import PlcDriver
from hal.transport.wirelog import WireLog
from sim.clock import SimClock
from sim.plc import DEFAULT_NODES, PlcServer
from sim.world import World

READ_SIGNAL = "hepa_dp_pa"
POLL_SIGNALS = ["positioner_fault", "positioner_in_position", "positioner_current"]
NOTIFY_SIGNAL = "door_closed"  # changes only when the bench writes it (the world keeps the door closed)
BLOCK = 50
PUBLISHING_MS = 20.0


class ServerThread:
    """A PlcServer in its own event loop thread (as the Simulator runs it)."""

    def __init__(self) -> None:
        self.world = World(SimClock(speed=1.0))
        self.plc = PlcServer(self.world)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-plc", daemon=True)

    def start(self) -> None:
        """Start the loop thread and the server in it."""
        self.thread.start()
        self.call(self.plc.start(), 30)

    def call(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        """Run a coroutine in the server's loop and wait for its result (blocking)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stop the server and its loop thread."""
        try:
            self.call(self.plc.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


async def alternate(paths: dict[str, Callable[[], Awaitable[Any]]], n: int) -> dict[str, Stats]:
    """Time each path n times, alternating blocks of BLOCK calls, after 10 warm-up calls each."""
    for fn in paths.values():
        for _ in range(10):
            await fn()
    samples: dict[str, list[float]] = {name: [] for name in paths}
    done = 0
    while done < n:
        k = min(BLOCK, n - done)
        for name, fn in paths.items():
            for _ in range(k):
                t0 = time.perf_counter()
                await fn()
                samples[name].append(time.perf_counter() - t0)
        done += k
    return {name: Stats.of(s) for name, s in samples.items()}


async def notify_latency(server: ServerThread, driver: PlcDriver, raw: Client, n: int) -> dict[str, Stats]:
    """Toggle door_closed on the server n times; latency to the raw subscription handler and to on_change."""
    node_id = ua.NodeId.from_string(DEFAULT_NODES[NOTIFY_SIGNAL])
    seen: dict[str, dict[bool, float]] = {"raw asyncua subscription": {}, "PlcDriver.on_change": {}}
    arrived = asyncio.Event()

    def mark(path: str, value: Any) -> None:
        """Note the first arrival of each value per path."""
        seen[path].setdefault(bool(value), time.perf_counter())
        if all(expected in s for s in seen.values()):
            arrived.set()

    class Handler:
        """asyncua subscription handler of the raw client."""

        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            """A data change reached the raw client."""
            mark("raw asyncua subscription", val)

    sub = await raw.create_subscription(PUBLISHING_MS, Handler())
    await sub.subscribe_data_change(raw.get_node(node_id))
    unregister = driver.on_change(lambda signal, value, ts: mark("PlcDriver.on_change", value)
                                  if signal == NOTIFY_SIGNAL else None)
    await asyncio.sleep(0.3)  # initial notifications
    samples: dict[str, list[float]] = {name: [] for name in seen}
    value = True
    rng = random.Random(7)
    try:
        for _ in range(n):
            value = not value
            expected = value
            for s in seen.values():
                s.clear()
            arrived.clear()

            async def write() -> float:
                """Write the value on the server; return the real time just before."""
                t0 = time.perf_counter()
                await server.plc._server.write_attribute_value(  # type: ignore[union-attr]
                    node_id, ua.DataValue(ua.Variant(expected, ua.VariantType.Boolean)))
                return t0

            t0 = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(write(), server.loop))
            await asyncio.wait_for(arrived.wait(), 2.0)
            for name, s in seen.items():
                samples[name].append(s[expected] - t0)
            await asyncio.sleep(rng.uniform(0.02, 0.05))  # random phase against both publishing timers
    finally:
        unregister()
        await sub.delete()
        restore = server.plc._server.write_attribute_value(  # type: ignore[union-attr]  # the world's value again
            node_id, ua.DataValue(ua.Variant(True, ua.VariantType.Boolean)))
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(restore, server.loop))
    return {name: Stats.of(s) for name, s in samples.items()}


async def measure(n: int, notify_n: int) -> list[tuple[str, dict[str, Stats]]]:
    """Start the server and both clients; return (title, stats by path) per measurement."""
    server = ServerThread()
    server.start()
    raw = Client(server.plc.endpoint, timeout=2.0)
    driver = PlcDriver(server.plc.endpoint, dict(DEFAULT_NODES), wire_log=WireLog(),
                       publishing_interval_ms=PUBLISHING_MS)
    results: list[tuple[str, dict[str, Stats]]] = []
    try:
        await raw.connect()
        await driver.connect()
        read_node = raw.get_node(DEFAULT_NODES[READ_SIGNAL])
        poll_nodes = [raw.get_node(DEFAULT_NODES[s]) for s in POLL_SIGNALS]
        results.append((f"read one variable ({READ_SIGNAL})", await alternate({
            "raw asyncua read_value": read_node.read_value,
            "PlcDriver.read": lambda: driver.read(READ_SIGNAL),
        }, n)))
        results.append(("read three variables (positioner poll)", await alternate({
            "raw asyncua read_values": lambda: raw.read_values(poll_nodes),
            "PlcDriver.read_many": lambda: driver.read_many(POLL_SIGNALS),
        }, n)))
        if notify_n:
            results.append((f"notification latency ({NOTIFY_SIGNAL}, publishing {PUBLISHING_MS:g} ms)",
                             await notify_latency(server, driver, raw, notify_n)))
    finally:
        await driver.close()
        await raw.disconnect()
        server.stop()
    return results


def run(n: int, notify_n: int) -> list[Figure]:
    """Measure, print the detail tables, return the figures (first path of each table is the raw baseline)."""
    results = asyncio.run(measure(n, notify_n))
    figures: list[Figure] = []
    labels = ["PLC read 1 variable", "PLC read 3 variables", "PLC notification latency"]
    for (title, stats), label in zip(results, labels):
        raw_name, ours_name = list(stats)
        raw, ours = stats[raw_name], stats[ours_name]
        print(f"\n{title}, n={raw.n} each")
        print_table(("path", "median", "p99", "mean", "max", "median / raw"),
                    [[name, fmt(s.median, "s"), fmt(s.p99, "s"), fmt(s.mean, "s"), fmt(s.max, "s"),
                      f"{s.median / raw.median:.2f}"] for name, s in stats.items()])
        figures += [Figure(f"{label} median", ours.median, raw.median, "s"),
                    Figure(f"{label} p99", ours.p99, raw.p99, "s")]
    return figures


def main() -> None:
    """CLI entry point."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=positive_int, default=300, help="reads per path (default 300)")
    parser.add_argument("--notify", type=int, default=200, help="notification round trips (default 200, 0 = skip)")
    args = parser.parse_args()
    if args.notify < 0:
        parser.error(f"--notify: expected a whole number >= 0, got {args.notify}")
    quiet_logging()
    figures = run(args.n, args.notify)
    print()
    print_figures(figures)
    if args.json:
        write_figures(args.json, figures)


if __name__ == "__main__":
    main()
