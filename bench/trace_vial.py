"""Where one vial's real time goes at `--speed max`, call by call: a diagnostic, not a benchmark (no raw baseline).

Runs an FGF-2 batch on the full Simulator (one process, as `fillfinish demo`) and wraps, on the instances, the record
append, every `Line.call` (by driver method), the positioner move with its `Move` call, reads and pauses, and the
pump's commands (by command letter); prints each one's real time per vial, calls per vial and time per call over the
fill, the process CPU per vial, and the OPC UA requests per vial by node (from the wire log).
Run: .venv/bin/python -m bench.trace_vial [--vials 200]
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from bench.bench_batch import MAX_RATE, RECIPE, FillTrace
from bench.common import base_parser, positive_int, quiet_logging
from fillfinish.batch.controller import TipLot
from fillfinish.config import load_site_config
from fillfinish.recipes.loader import load_recipe
from fillfinish.session import controller_session
from sim.runner import Simulator


class Tally:
    """Real time and calls per label, counted only while `on` (the fill)."""

    def __init__(self) -> None:
        self.total: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self.on = False

    def add(self, label: str, seconds: float) -> None:
        """Count one call of `label` that took `seconds`."""
        if self.on:
            self.total[label] += seconds
            self.calls[label] += 1

    def wrap(self, owner: object, name: str, label: str | Callable[[tuple[Any, ...]], str]) -> None:
        """Replace `owner.name` (a function or a coroutine function) by a timed wrapper."""
        fn = getattr(owner, name)
        pick = label if callable(label) else (lambda _a: label)
        if asyncio.iscoroutinefunction(fn):
            async def timed_async(*args: Any, **kw: Any) -> Any:
                """The wrapped coroutine, timed."""
                t0 = time.perf_counter()
                try:
                    return await fn(*args, **kw)
                finally:
                    self.add(pick(args), time.perf_counter() - t0)
            setattr(owner, name, timed_async)
        else:
            def timed(*args: Any, **kw: Any) -> Any:
                """The wrapped call, timed."""
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kw)
                finally:
                    self.add(pick(args), time.perf_counter() - t0)
            setattr(owner, name, timed)


def cpu_s() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def trace(folder: Path, vials: int) -> None:
    """Run the batch and print the table."""
    recipe = load_recipe(RECIPE)
    tip_lot = TipLot("TL-BENCH-1", "EO-CYCLE-7", (dt.date.today() + dt.timedelta(days=400)).isoformat())
    sim = Simulator(MAX_RATE, timeline=folder / "timeline").start()
    tally, marks = Tally(), {}
    try:
        site = load_site_config(sim.write_site_config(folder / "site.toml", f"sqlite:///{folder / 'record.db'}"))
        fill = FillTrace()

        def progress(what: str, done: float, total: float) -> None:
            """Count from the first filled vial to the last."""
            if what == "fill" and not tally.on:
                marks["cpu0"], tally.on = cpu_s(), True
            if what == "fill" and done == total:
                marks["cpu1"], tally.on = cpu_s(), False
            fill.progress(what, done, total)

        async with controller_session(site, recipe, progress=progress) as c:
            fill.controller = c
            plc, pump = c.line.plc, c.line.pump
            tally.wrap(c.store, "append_checked", "record append")
            tally.wrap(c.line, "call", lambda a: "Line.call " + getattr(a[0], "__name__", "?"))
            tally.wrap(plc, "move_positioner", "positioner move")
            tally.wrap(plc, "read_many", "  positioner: read_many")
            tally.wrap(plc._link, "call", "  positioner: Move call")
            if plc._pause is not None:
                tally.wrap(plc, "_pause", "  positioner: pause")
            tally.wrap(pump, "command", lambda a: "  pump command " + str(a[0])[:1])
            outcome = await c.run_new(lot="L-TRACE", vials=vials, operator="op.bench", tip_lot=tip_lot)
            requests: collections.Counter[str] = collections.Counter()
            for event in c.line.wire_log.events:
                if event.device == "plc" and event.dir == "call":
                    d = json.loads(event.data)
                    requests[f"{d.get('op')} {str(d.get('node') or d.get('nodes') or '')[:80]}"] += 1
    finally:
        sim.stop()
    n = max(1, len(fill.times) - 1)
    real = fill.times[-1] - fill.times[0] if len(fill.times) > 1 else 0.0
    per_vial = sorted(b - a for a, b in zip(fill.times, fill.times[1:])) or [0.0]
    print(f"outcome {outcome.state}, {outcome.accepted} accepted; fill {real:.2f} s real, "
          f"{1000 * real / n:.2f} ms a vial (median {1000 * per_vial[len(per_vial) // 2]:.2f} ms); "
          f"process CPU {1000 * (marks.get('cpu1', 0) - marks.get('cpu0', 0)) / n:.2f} ms a vial")
    print(f"{'call':40s} {'ms a vial':>10s} {'calls a vial':>13s} {'ms a call':>10s}")
    for label in sorted(tally.total, key=lambda k: -tally.total[k]):
        print(f"{label:40s} {1000 * tally.total[label] / n:10.3f} {tally.calls[label] / n:13.2f} "
              f"{1000 * tally.total[label] / tally.calls[label]:10.3f}")
    print("\nOPC UA requests a vial over the whole batch (wire log ring, last 10,000 events)")
    for what, count in requests.most_common(12):
        print(f"{count / vials:8.2f}  {what}")


def main() -> None:
    """CLI entry point."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--vials", type=positive_int, default=200, help="vials in the batch (default 200)")
    args = parser.parse_args()
    quiet_logging()
    with tempfile.TemporaryDirectory(prefix="ff-trace-vial-") as tmp:
        asyncio.run(trace(Path(tmp), args.vials))


if __name__ == "__main__":
    main()
