"""Pump status round trip: CavroPump.query() through SerialLink (with a WireLog) vs raw pyserial, same pty, same run.

The PumpEmulator serves a real pty; its port waits the 9600-baud byte times and a 5 ms answer delay on the simulated
clock (sim/serial_port.py). At clock speed 1 those are real (about 17 ms a round trip, like a real pump), so the
driver's overhead hides inside the line time; at a high speed they shrink to microseconds and the figure shows the
software path alone. Both are measured. Raw = write b"/1Q\\r", read until b"\\x03\\r\\n" with pyserial on the same pty.
Run: .venv/bin/python -m bench.bench_pump [--n 300] [--speeds 1,1000]
"""

from __future__ import annotations

import time
from typing import Callable

import serial

from bench.common import Figure, Stats, base_parser, fmt, positive_int, print_figures, print_table, quiet_logging
from bench.common import write_figures
from hal.dispenser.driver import CavroPump
from hal.dispenser.protocol import DT_TERMINATOR
from hal.transport.serial_link import SerialLink
from hal.transport.wirelog import WireLog
from sim.clock import SimClock
from sim.dispenser import PumpEmulator
from sim.world import World

REQUEST = b"/1Q\r"
TERMINATOR = b"\x03\r\n"
BLOCK = 50  # raw and ours alternate in blocks of this many calls, so drift on the machine hits both alike


def raw_query(port: serial.Serial, deadline_s: float = 1.0) -> bytes:
    """One status round trip with plain pyserial: write, read what is waiting until the terminator."""
    port.write(REQUEST)
    port.flush()
    buf = b""
    end = time.monotonic() + deadline_s
    while not buf.endswith(TERMINATOR):
        if time.monotonic() > end:
            raise TimeoutError(f"raw pyserial: no complete reply, got {buf!r}")
        buf += port.read(max(1, port.in_waiting))
    return buf


def measure(speed: float, n: int) -> dict[str, Stats]:
    """Latencies of raw pyserial, SerialLink.exchange and CavroPump.query against one emulator at clock `speed`."""
    world = World(SimClock(speed=speed))
    emulator = PumpEmulator(world)
    path = emulator.start()
    raw = serial.Serial(path, baudrate=9600, timeout=1.0)
    link = SerialLink(path, device="pump", baudrate=9600, wire_log=WireLog())
    pump = CavroPump(link, syringe_ul=1000.0, clock_speed=speed)
    try:
        assert DT_TERMINATOR == TERMINATOR, "the DT reply terminator changed; update the raw baseline"
        calls: dict[str, Callable[[], object]] = {
            "raw pyserial": lambda: raw_query(raw),
            "SerialLink.exchange": lambda: link.exchange(REQUEST, terminator=TERMINATOR, timeout=1.0),
            "CavroPump.query": pump.query,
        }
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for fn in calls.values():  # warm-up: open ports, first-call costs
            for _ in range(10):
                fn()
        done = 0
        while done < n:
            k = min(BLOCK, n - done)
            for name, fn in calls.items():
                for _ in range(k):
                    t0 = time.perf_counter()
                    fn()
                    samples[name].append(time.perf_counter() - t0)
            done += k
        status = pump.query()
        if status.error_code:
            raise RuntimeError(f"the emulated pump reports error {status.error_code} after the run")
        return {name: Stats.of(s) for name, s in samples.items()}
    finally:
        raw.close()
        pump.close()
        emulator.stop()


def run(n: int, speeds: list[float]) -> list[Figure]:
    """Measure at each clock speed, print the detail table, return the figures (median and p99 per speed)."""
    figures: list[Figure] = []
    for speed in speeds:
        stats = measure(speed, n)
        raw = stats["raw pyserial"]
        print(f"\npump status round trip (Q), emulator clock speed {speed:g}, n={n} each")
        print_table(
            ("path", "median", "p99", "mean", "max", "median / raw"),
            [[name, fmt(s.median, "s"), fmt(s.p99, "s"), fmt(s.mean, "s"), fmt(s.max, "s"),
              f"{s.median / raw.median:.2f}"] for name, s in stats.items()],
        )
        ours = stats["CavroPump.query"]
        figures += [
            Figure(f"pump Q round trip median (speed {speed:g})", ours.median, raw.median, "s"),
            Figure(f"pump Q round trip p99 (speed {speed:g})", ours.p99, raw.p99, "s"),
        ]
    return figures


def main() -> None:
    """CLI entry point."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=positive_int, default=300, help="round trips per path and speed (default 300)")
    parser.add_argument("--speeds", default="1,1000",
                        help="comma-separated emulator clock speeds (default 1,1000; 1 = real 9600-baud timing)")
    args = parser.parse_args()
    try:
        speeds = [float(s) for s in args.speeds.split(",") if s.strip()]
        if not speeds or any(not s > 0 for s in speeds):
            raise ValueError
    except ValueError:
        parser.error(f"--speeds: expected comma-separated numbers > 0, got {args.speeds!r}")
    quiet_logging()
    figures = run(args.n, speeds)
    print()
    print_figures(figures)
    if args.json:
        write_figures(args.json, figures)


if __name__ == "__main__":
    main()
