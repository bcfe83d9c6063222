"""One whole FGF-2 batch on the full simulator: controller vials/s and record entries/s beside raw SQLite commits/s.

The Simulator (pump and balance on ptys, PLC over loopback OPC UA) runs at a high clock speed so that simulated
waits (UV dose, moves, the post-fill window) take little real time; the fill rate then shows what our software
path costs. Fill phase only: real time (perf_counter) from the progress callback of the first vial to that of the
last; record entries written in the same window (BatchRecorder.count). The record is SQLite (WAL,
synchronous=FULL) in a temporary folder; the raw baseline is plain sqlite3 with the same settings on the same disk,
one small row per commit, measured before and after the batch. RecordStore.append alone (no controller) is measured
too, to split the record's own cost from the controller's.
Speed choice: see bench/README.md (real overheads are multiplied by the speed into simulated time, and the recipe's
fill_duration_max_s = 14,400 simulated s must hold).
Run: .venv/bin/python -m bench.bench_batch [--vials 1000] [--speed 200]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO, Figure, Stats, base_parser, fmt, positive_float, positive_int, print_figures
from bench.common import print_table, quiet_logging, write_figures
from bench.bench_record import raw_sqlite_rate
from fillfinish.batch.controller import BatchController, BatchOutcome, TipLot
from fillfinish.config import SiteConfig, load_site_config
from fillfinish.recipes.loader import load_recipe
from fillfinish.record.store import RecordStore
from fillfinish.session import controller_session
from bench.sim_process import simulator_process
from sim.runner import Simulator

RECIPE = REPO / "recipes" / "fgf2.toml"
DEFAULT_SPEED = 200.0  # 1000 vials must fit fill_duration_max_s in simulated time; see bench/README.md
MAX = 0.0  # --speed max: the simulator's shared timeline (time moves only with the machine's waits)
MAX_RATE = 2000.0  # its rate limit, as `fillfinish demo --speed max`


def raw_sqlite_commits_per_s(folder: Path, n: int) -> float:
    """Commits per second of plain sqlite3 (WAL, synchronous=FULL), one small row per transaction, in a fresh file
    of `folder` removed afterwards (the measurement itself is bench_record's raw baseline)."""
    path = folder / f"raw-{time.monotonic_ns()}.db"
    try:
        return raw_sqlite_rate(path, n)
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def store_appends_per_s(folder: Path, n: int) -> float:
    """Entries per second of RecordStore.append alone (hash chain, ledger, one commit each), no controller."""
    store = RecordStore(f"sqlite:///{folder / 'store-only.db'}")
    try:
        batch = store.create_batch(
            product="bench", product_code="BENCH", recipe_name="bench", recipe_version="1", recipe_hash="0" * 64,
            recipe_snapshot="bench", lot="L-BENCH", planned_vials=n, operator="bench", mode="production",
            site_config={"bench": True},
        )
        t0 = time.perf_counter()
        for i in range(n):
            store.append(batch, "vial", {"vial": i, "status": "accepted", "reason": ""}, "system")
        return n / (time.perf_counter() - t0)
    finally:
        store.close()


class CallTimer:
    """Adds up real time spent in a few of the controller's calls (wrapped on the instances, code unchanged)."""

    CATEGORIES = ("record append", "pump calls", "balance calls", "positioner moves")

    def __init__(self) -> None:
        self.total = dict.fromkeys(self.CATEGORIES, 0.0)
        self.calls = dict.fromkeys(self.CATEGORIES, 0)

    def wrap_sync(self, owner: object, name: str, category: str) -> None:
        """Replace the blocking method `owner.name` by a timed wrapper."""
        fn = getattr(owner, name)

        def timed(*args: Any, **kw: Any) -> Any:
            """The wrapped call, timed."""
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                self.total[category] += time.perf_counter() - t0
                self.calls[category] += 1

        setattr(owner, name, timed)

    def wrap_async(self, owner: object, name: str, category: str) -> None:
        """Replace the coroutine method `owner.name` by a timed wrapper."""
        fn = getattr(owner, name)

        async def timed(*args: Any, **kw: Any) -> Any:
            """The wrapped call, timed."""
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kw)
            finally:
                self.total[category] += time.perf_counter() - t0
                self.calls[category] += 1

        setattr(owner, name, timed)

    def instrument(self, controller: BatchController) -> None:
        """Time the controller's record appends, pump and balance calls and positioner moves."""
        self.wrap_sync(controller.store, "append_checked", "record append")  # the batch recorder's way in
        line, call = controller.line, controller.line.call

        async def device_call(fn: Any, *args: Any, **kw: Any) -> Any:
            """Line.call, timed as a pump or a balance call by the device the method belongs to."""
            category = "balance calls" if getattr(fn, "__self__", None) is line.balance else "pump calls"
            t0 = time.perf_counter()
            try:
                return await call(fn, *args, **kw)
            finally:
                self.total[category] += time.perf_counter() - t0
                self.calls[category] += 1

        setattr(line, "call", device_call)
        self.wrap_async(controller.line.plc, "move_positioner", "positioner moves")

    def snapshot(self) -> dict[str, tuple[float, int]]:
        """(seconds, calls) so far per category."""
        return {c: (self.total[c], self.calls[c]) for c in self.CATEGORIES}


@dataclass
class FillTrace:
    """What the progress callback saw of the fill: real time and record count after each vial."""

    controller: BatchController | None = None
    times: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    timer: CallTimer = field(default_factory=CallTimer)
    first: dict[str, tuple[float, int]] = field(default_factory=dict)
    last: dict[str, tuple[float, int]] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU seconds (user + system) at each vial

    def progress(self, what: str, done: float, total: float) -> None:
        """The controller's progress callback: note each filled vial; abort a held batch."""
        c = self.controller
        if c is None:
            return
        if what == "fill" and c.rec is not None:
            self.times.append(time.perf_counter())
            self.counts.append(c.rec.count)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.cpu.append(usage.ru_utime + usage.ru_stime)
            self.last = self.timer.snapshot()
            if not self.first:
                self.first = self.last
        elif what == "held":  # nobody will unhold a bench batch: record why and abort it
            self.held.append(c.stop_reason or "held")
            asyncio.get_running_loop().create_task(c.command("Abort", "op.bench", "bench batch held"))


@dataclass
class BatchResult:
    """A finished bench batch."""

    outcome: BatchOutcome
    trace: FillTrace
    total_real_s: float
    entries_total: int
    fill_sim_s: float
    fill_limit_s: float


@contextmanager
def simulator_site(folder: Path, speed: float, sim_process: bool) -> Iterator[SiteConfig]:
    """A fresh simulator at `speed` (in its own process, or in this one) and the site config pointing at it."""
    database_url = f"sqlite:///{folder / 'record.db'}"
    if sim_process:
        with simulator_process(folder, "max" if speed == MAX else f"{speed:g}", database_url) as site:
            yield site
        return
    timeline = folder / "timeline" if speed == MAX else None
    sim = Simulator(MAX_RATE if timeline else speed, timeline=timeline).start()
    try:
        yield load_site_config(sim.write_site_config(folder / "site.toml", database_url))
    finally:
        sim.stop()


async def run_batch(folder: Path, vials: int, speed: float, sim_process: bool = True) -> BatchResult:
    """Run one FGF-2 batch of `vials` on a fresh simulator at `speed`; SQLite record in `folder`."""
    recipe = load_recipe(RECIPE)
    tip_lot = TipLot("TL-BENCH-1", "EO-CYCLE-7", (dt.date.today() + dt.timedelta(days=400)).isoformat())
    with simulator_site(folder, speed, sim_process) as site:
        trace = FillTrace()
        async with controller_session(site, recipe, progress=trace.progress) as controller:
            trace.controller = controller
            trace.timer.instrument(controller)
            t0 = time.perf_counter()
            outcome = await controller.run_new(lot="L-BENCH", vials=vials, operator="op.bench", tip_lot=tip_lot)
            total = time.perf_counter() - t0
            entries_total = controller.store.last_entry(outcome.batch_id).seq  # type: ignore[union-attr]
            vial_ts = [e.ts for e in controller.store.entries(outcome.batch_id, kinds=["vial"])]
        fill_sim = (vial_ts[-1] - vial_ts[0]).total_seconds() if len(vial_ts) > 1 else 0.0
        return BatchResult(outcome, trace, total, entries_total, fill_sim,
                           recipe.recipe.hold_times.fill_duration_max_s)


def run(vials: int, speed: float, raw_n: int, store_n: int, folder: Path | None,
        sim_process: bool = True) -> tuple[list[Figure], bool]:
    """Raw SQLite, RecordStore alone, the batch, raw SQLite again; print the detail; (figures, batch complete?)."""
    with tempfile.TemporaryDirectory(prefix="ff-bench-", dir=folder) as tmp:
        work = Path(tmp)
        raw_before = raw_sqlite_commits_per_s(work, raw_n)
        store_rate = store_appends_per_s(work, store_n)
        result = asyncio.run(run_batch(work, vials, speed, sim_process))
        raw_after = raw_sqlite_commits_per_s(work, raw_n)
    raw = (raw_before + raw_after) / 2
    o, tr = result.outcome, result.trace
    clean = o.state == "Complete" and o.accepted == vials
    if not clean:
        print(f"the bench batch did not complete cleanly: state {o.state}, accepted {o.accepted}/{vials}, "
              f"rejected {o.rejected}, uncertain {o.uncertain}; {o.message}", file=sys.stderr)
        for reason in tr.held:
            print(f"  held (then aborted by the bench): {reason}", file=sys.stderr)
    if len(tr.times) < 2:
        print("fewer than two vials filled: no fill rate to report", file=sys.stderr)
        sys.exit(1)
    fill_real = tr.times[-1] - tr.times[0]
    vials_s = (len(tr.times) - 1) / fill_real
    entries = tr.counts[-1] - tr.counts[0]
    entries_s = entries / fill_real
    per_vial = Stats.of([b - a for a, b in zip(tr.times, tr.times[1:])])
    print(f"\nFGF-2 batch, {vials} vials, simulator clock speed {speed_text(speed)} "
          f"({'its own process' if sim_process else 'threads of this process'}), SQLite record in "
          f"{tempfile.gettempdir()}")
    print_table(("measure", "value"), [
        ["outcome", f"{o.state}, accepted {o.accepted}, rejected {o.rejected}, uncertain {o.uncertain}"],
        ["whole batch, real", fmt(result.total_real_s, "s")],
        ["fill phase, real (vial 1 to vial N)", fmt(fill_real, "s")],
        ["fill phase, simulated (first to last vial entry)",
         f"{result.fill_sim_s:,.0f} s ({100 * result.fill_sim_s / result.fill_limit_s:.0f} % of the recipe's "
         f"fill_duration_max_s {result.fill_limit_s:,.0f} s)"],
        ["effective speed in the fill (simulated / real)", f"{result.fill_sim_s / fill_real:,.0f}"],
        ["real time per vial: median / p99 / max",
         f"{fmt(per_vial.median, 's')} / {fmt(per_vial.p99, 's')} / {fmt(per_vial.max, 's')}"],
        ["controller vials/s (fill phase, real)", f"{vials_s:,.1f}"],
        [f"process CPU per vial (controller{'' if sim_process else ' and simulator threads'}, user + system)",
         fmt((tr.cpu[-1] - tr.cpu[0]) / (len(tr.times) - 1), "s")],
        ["record entries in the fill phase", f"{entries:,} ({entries / (len(tr.times) - 1):.2f} per vial)"],
        ["record entries in the whole batch", f"{result.entries_total:,}"],
        ["record entries/s during the fill (real)", f"{entries_s:,.1f}"],
        ["RecordStore.append alone after the batch, entries/s (one block in a fresh store; issue 11.2's figure is "
         "bench_record's alternating blocks)", f"{store_rate:,.1f} (n={store_n})"],
        ["raw sqlite3 commits/s before / after the batch", f"{raw_before:,.1f} / {raw_after:,.1f} (n={raw_n} each)"],
    ])
    vials_timed = len(tr.times) - 1
    rows = []
    for category in CallTimer.CATEGORIES:
        spent = tr.last[category][0] - tr.first[category][0]
        calls = tr.last[category][1] - tr.first[category][1]
        rows.append([category, f"{calls / vials_timed:.2f}", fmt(spent / max(calls, 1), "s"),
                     fmt(spent / vials_timed, "s"), f"{100 * spent / fill_real:.0f} %"])
    rest = fill_real - sum(tr.last[c][0] - tr.first[c][0] for c in CallTimer.CATEGORIES)
    rows.append(["the rest (controller's own path, progress, monitor)", "", "", fmt(rest / vials_timed, "s"),
                 f"{100 * rest / fill_real:.0f} %"])
    print(f"\nwhere the fill's real time goes (vials 2..{len(tr.times)}; "
          "a record append made by the monitor during a move counts in both)")
    print_table(("category", "calls per vial", "mean per call", "time per vial", "share of fill time"), rows)
    return [
        Figure("record entries/s in the batch fill", entries_s, raw, "/s", "higher"),
        Figure("controller vials/s (raw: commits/s / entries per vial)", vials_s,
               raw / (entries / (len(tr.times) - 1)), "/s", "higher"),
        Figure(f"fill real time per vial, median (speed {speed_text(speed).split()[0]}, simulator "
               f"{'process' if sim_process else 'threads'}; raw: its entries' commits)",
               per_vial.median, (entries / (len(tr.times) - 1)) / raw, "s"),
    ], clean


def speed_arg(text: str) -> float:
    """argparse type: a speed > 0, or 'max' (MAX)."""
    return MAX if text.strip().lower() == "max" else positive_float(text)


def speed_text(speed: float) -> str:
    """How a speed is shown."""
    return "max (shared timeline)" if speed == MAX else f"{speed:g}"


def main() -> None:
    """CLI entry point."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--vials", type=positive_int, default=1000, help="vials in the batch (default 1000; the "
                        "recipe allows 10..2000)")
    parser.add_argument("--speed", type=speed_arg, default=DEFAULT_SPEED,
                        help=f"simulator clock speed or 'max' (default {DEFAULT_SPEED:g}; see bench/README.md)")
    parser.add_argument("--sim", choices=("process", "thread"), default="process",
                        help="the simulator in its own process (default: as beside a real controller) or in threads "
                        "of the benchmark's process (their CPU then counts as the controller's)")
    parser.add_argument("--raw-n", type=positive_int, default=2000, help="raw sqlite3 commits per measurement")
    parser.add_argument("--store-n", type=positive_int, default=1000, help="RecordStore.append calls alone")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the temporary databases (default: the "
                        "system temp folder)")
    args = parser.parse_args()
    if args.dir is not None and not args.dir.is_dir():
        parser.error(f"--dir: {args.dir} is not a folder")
    fill = load_recipe(RECIPE).recipe.fill
    if not fill.vial_count_min <= args.vials <= fill.vial_count_max:
        parser.error(f"--vials: {args.vials} outside the limits of {RECIPE.name}; allowed: "
                     f"{fill.vial_count_min}-{fill.vial_count_max}")
    quiet_logging()
    figures, clean = run(args.vials, args.speed, args.raw_n, args.store_n, args.dir, args.sim == "process")
    print()
    print_figures(figures)
    if args.json:
        write_figures(args.json, figures)
    if not clean:
        sys.exit(2)


if __name__ == "__main__":
    main()
