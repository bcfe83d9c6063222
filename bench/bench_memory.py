"""Controller memory over a long batch: resident memory (RSS) of the controller process at 1,000 and 10,000 vials.

The simulator runs in its own process (on the `--speed max` timeline it shares with the controller through a file,
so the world's per-vial bookkeeping does not count); this process is only the controller: record, line, monitor,
batch controller. RSS (/proc/self/status VmRSS) is sampled at every tenth of the fill; "flat" means the growth
from 10 % to 100 % of the fill is small beside the process's size.
Raw baseline (same run, same process): the RSS after the controller session opened (record, drivers, PLC
subscription), before the batch starts.
The recipe is recipes/fgf2.toml with the vial limit and the fill duration raised for the 10,000-vial run only (a bench
copy; the real recipe allows 2,000 vials and 14,400 s), and the simulated infeed has enough vial positions.
Run: .venv/bin/python -m bench.bench_memory [--vials 1000] [--big]   (--big adds the 10,000-vial batch, minutes)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, Figure, base_parser, positive_int, print_figures, print_table, quiet_logging
from bench.common import write_figures

RECIPE = REPO / "recipes" / "fgf2.toml"
MAX_RATE = 2000.0  # as `fillfinish demo --speed max`


def rss_bytes() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in bytes, from /proc/self/status."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, amount, _unit = line.split()
            values[key] = int(amount) * 1024
    return values["VmRSS:"], values["VmHWM:"]


def serve_simulator(folder: str, positions: int, ready: Any, stop: Any) -> None:
    """Child process: the simulator on a shared timeline, its site config written to `folder`, until `stop`."""
    from sim.runner import Simulator
    from sim.world import WorldSettings

    quiet_logging()
    sim = Simulator(MAX_RATE, settings=WorldSettings(positions=positions), timeline=Path(folder) / "timeline")
    sim.start()
    try:
        sim.write_site_config(Path(folder) / "site.toml", f"sqlite:///{Path(folder) / 'record.db'}")
        ready.set()
        stop.wait()
    finally:
        sim.stop()


def bench_recipe(folder: Path, vials: int) -> Path:
    """fgf2.toml, with the vial limit and the fill duration raised when `vials` is above what it allows."""
    text = RECIPE.read_text()
    if vials > 2000:
        text = text.replace("vial_count_max = 2000", f"vial_count_max = {vials}")
        text = text.replace("fill_duration_max_s = 14400.0", f"fill_duration_max_s = {vials * 10.0:.1f}")
        text = text.replace("tips_sterilised_to_use_s = 14400.0", f"tips_sterilised_to_use_s = {vials * 10.0:.1f}")
    path = folder / f"fgf2-bench-{vials}.toml"
    path.write_text(text)
    return path


async def run_batch(folder: Path, vials: int) -> dict[str, Any]:
    """One batch against the simulator whose config is in `folder`; RSS samples along the fill."""
    from fillfinish.batch.controller import TipLot
    from fillfinish.config import load_site_config
    from fillfinish.recipes.loader import load_recipe
    from fillfinish.session import controller_session

    recipe = load_recipe(bench_recipe(folder, vials))
    site = load_site_config(folder / "site.toml")
    tip_lot = TipLot("TL-BENCH-1", "EO-CYCLE-7", (dt.date.today() + dt.timedelta(days=400)).isoformat())
    samples: list[tuple[int, int]] = []
    holds: list[str] = []
    step = max(1, vials // 10)
    box: dict[str, Any] = {}

    def progress(what: str, done: float, total: float) -> None:
        """Sample RSS at every tenth of the fill; a held batch (a device answer later than its timeout on a loaded
        machine) is unheld by the bench's supervisor, as a person would after checking the line."""
        if what == "fill" and (int(done) % step == 0 or int(done) == vials):
            samples.append((int(done), rss_bytes()[0]))
        elif what == "held" and "c" in box:
            holds.append(box["c"].stop_reason or "held")
            asyncio.get_running_loop().create_task(unhold(box["c"]))

    async with controller_session(site, recipe, progress=progress) as controller:
        box["c"] = controller
        opened = rss_bytes()[0]
        t0 = time.perf_counter()
        outcome = await controller.run_new(lot=f"L-MEM-{vials}", vials=vials, operator="op.bench", tip_lot=tip_lot)
        real = time.perf_counter() - t0
    return {"vials": vials, "state": outcome.state, "accepted": outcome.accepted, "opened": opened,
            "samples": samples, "peak": rss_bytes()[1], "real_s": real, "holds": holds}


async def unhold(controller: Any) -> None:
    """Unhold a held bench batch once the controller accepts it (a few tries)."""
    for _ in range(50):
        await asyncio.sleep(0.2)
        try:
            await controller.command("Unhold", "sup.bench", "bench: continue after a device timeout")
            return
        except Exception:  # noqa: BLE001 - refused while still holding or a check fails: try again
            continue


def measure(vials: int) -> dict[str, Any]:
    """Start the simulator process, run the batch in this process, stop the simulator."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="ff-bench-memory-") as tmp:
        ready, stop = ctx.Event(), ctx.Event()
        child = ctx.Process(target=serve_simulator, args=(tmp, vials + 10, ready, stop), daemon=True)
        child.start()
        try:
            if not ready.wait(120):
                raise RuntimeError("the simulator process did not start within 120 s")
            return asyncio.run(run_batch(Path(tmp), vials))
        finally:
            stop.set()
            child.join(30)


def main() -> None:
    """CLI entry point."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--vials", type=positive_int, default=1000, help="vials in the first batch (default 1000)")
    parser.add_argument("--big", action="store_true", help="also run a 10,000-vial batch (several minutes)")
    args = parser.parse_args()
    quiet_logging()
    runs = [args.vials] + ([10_000] if args.big else [])
    figures, rows, clean = [], [], True
    for n in runs:
        print(f"  batch of {n:,} vials ...", flush=True)
        r = measure(n)
        mb = 1024 * 1024
        first, last = r["samples"][0][1], r["samples"][-1][1]
        clean = clean and r["state"] == "Complete"
        for reason in r["holds"]:
            print(f"  held and unheld by the bench: {reason}")
        rows.append([f"{n:,}", f"{r['state']}, {r['accepted']} accepted, {len(r['holds'])} holds", f"{r['real_s']:.0f} s",
                     f"{r['opened'] / mb:.1f} MB", f"{first / mb:.1f} MB", f"{last / mb:.1f} MB",
                     f"{(last - first) / mb:+.1f} MB", f"{r['peak'] / mb:.1f} MB"])
        figures.append(Figure(f"controller peak RSS, {n:,}-vial batch", r["peak"] / mb, r["opened"] / mb, "MB"))
    print("\ncontroller process memory (the simulator runs in its own process)")
    print_table(("vials", "outcome", "batch real", "RSS after open", "RSS at 10 % of fill", "RSS at end of fill",
                 "growth 10 %->100 %", "peak RSS"), rows)
    print()
    print_figures(figures)
    if args.json:
        write_figures(args.json, figures)
    if not clean:
        print("a batch did not complete with every vial accepted", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
