"""Run every benchmark, each in its own process (fresh ptys, event loops and threads), then print one summary table.

`make bench` runs this. Each benchmark prints its own detail as it goes; the summary lists every figure as ours, the
raw baseline measured in the same run, and the ratio ours/raw. Exit status 1 if a benchmark failed.
Run: .venv/bin/python bench/run_all.py [--quick] [--vials N] [--speed S|max] [--big]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script (python bench/run_all.py): make the bench package importable
    sys.path.insert(0, str(REPO))

from bench.common import Figure, positive_float, positive_int, print_figures, read_figures  # noqa: E402


def commands(quick: bool, vials: int | None, speed: str | None, big: bool) -> list[tuple[str, list[str]]]:
    """(module, extra arguments) of each benchmark."""
    batch = ["--vials", str(vials or (100 if quick else 1000)), "--speed", speed or "max"]
    record = ["--n", "300", "--rounds", "2", "--verify-entries", "100000"] if quick else []  # bench_record: 1M verify
    if quick:
        return [("bench.bench_pump", ["--n", "100"]), ("bench.bench_plc", ["--n", "100", "--notify", "30"]),
                ("bench.bench_interlock", ["--trials", "50"]),
                ("bench.bench_batch", batch + ["--raw-n", "500", "--store-n", "300"]),
                ("bench.bench_demo", ["--vials", str(vials or 100), "--raw-n", "500"]),
                ("bench.bench_memory", ["--vials", "200"]), ("bench.bench_record", record)]
    return [("bench.bench_pump", []), ("bench.bench_plc", []), ("bench.bench_interlock", []),
            ("bench.bench_batch", batch), ("bench.bench_demo", ["--vials", str(vials or 1000)]),
            ("bench.bench_memory", ["--vials", "1000"] + (["--big"] if big else [])),
            ("bench.bench_record", record)]


@contextmanager
def durable_postgres() -> Iterator[dict[str, str]]:
    """The environment for bench_record: FILLFINISH_BENCH_PG_URL as given, else a throwaway cluster with PostgreSQL's
    own durability (fsync on: scripts/test-postgres.sh with FILLFINISH_PG_DURABLE=1), stopped afterwards; without
    PostgreSQL binaries, no URL (bench_record then skips its PostgreSQL figures and says so)."""
    env = dict(os.environ)
    if env.get("FILLFINISH_BENCH_PG_URL") or not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        yield env
        return
    script = REPO / "scripts" / "test-postgres.sh"
    folder = tempfile.mkdtemp(prefix="ff-bench-pg-")
    started = subprocess.run(["bash", str(script), "start", folder], capture_output=True, text=True,
                             env={**env, "FILLFINISH_PG_DURABLE": "1"})
    if started.returncode != 0:
        print(f"no durable PostgreSQL for bench_record: {started.stderr.strip()}", file=sys.stderr)
        yield env
        return
    try:
        yield {**env, "FILLFINISH_BENCH_PG_URL": started.stdout.strip().splitlines()[-1]}
    finally:
        subprocess.run(["bash", str(script), "stop", folder], capture_output=True)


def speed_arg(text: str) -> str:
    """argparse type: 'max' or a number > 0 (kept as text for the batch benchmark's command line)."""
    return "max" if text.strip().lower() == "max" else f"{positive_float(text):g}"


def main() -> int:
    """Run the benchmarks one after the other and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and a 100-vial batch (about 30 s)")
    parser.add_argument("--vials", type=positive_int, default=None, help="vials in the batch benchmark")
    parser.add_argument("--speed", type=speed_arg, default=None,
                        help="simulator speed of the batch benchmark: a number or max (default max)")
    parser.add_argument("--big", action="store_true", help="also the 10,000-vial memory batch (several minutes)")
    args = parser.parse_args()
    figures: list[Figure] = []
    failed: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ff-bench-json-") as tmp, durable_postgres() as pg_env:
        for module, extra in commands(args.quick, args.vials, args.speed, args.big):
            out = Path(tmp) / f"{module}.json"
            cmd = [sys.executable, "-m", module, "--json", str(out), *extra]
            print(f"\n=== {' '.join(['python', '-m', module, *extra])}", flush=True)
            t0 = time.perf_counter()
            rc = subprocess.run(cmd, cwd=REPO, env=pg_env).returncode
            print(f"=== {module}: exit {rc}, {time.perf_counter() - t0:.1f} s", flush=True)
            if rc != 0:
                failed.append(f"{module} (exit {rc})")
            if out.is_file():
                figures += read_figures(out)[0]
    print(f"\n=== summary ({time.strftime('%Y-%m-%d %H:%M')}, {time.perf_counter() - started:.0f} s in all; "
          "ratio = ours / raw baseline of the same run)")
    print_figures(figures)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
