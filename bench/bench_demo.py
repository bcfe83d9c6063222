"""`fillfinish demo --vials N --speed max` as a person runs it: whole-process wall time and time per vial beside the
durable commits of the same batch's record entries on the same disk (raw sqlite3, WAL + FULL, same run).

The demo runs in its own process (the controller; it starts its simulator as a child process, as the CLI does), its record is a fresh SQLite file
in a temporary folder. Ours: wall time from start to exit (start-up, UV cycle, tip step, prime, fill, post-fill and
the summary included), and the same divided by the vials. Raw baseline: the batch's entry count (read from its record
afterwards) times one raw commit, i.e. the least the batch's record could cost with every entry committed on its own;
raw commits/s is measured before and after the demo (the mean is used). Also printed: the process's CPU time and peak
RSS (the child's `ru_maxrss`).
Run: .venv/bin/python -m bench.bench_demo [--vials 1000]
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_batch import raw_sqlite_commits_per_s
from bench.common import REPO, Figure, base_parser, fmt, positive_int, print_figures, print_table, write_figures


def run_demo(folder: Path, vials: int) -> tuple[float, int, float, float, str]:
    """(wall s, exit status, CPU s, peak RSS MB, output tail) of one `fillfinish demo` in its own process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fillfinish", "demo", "--vials", str(vials), "--speed", "max",
                           "--db", f"sqlite:///{folder / 'demo.db'}"], cwd=folder, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "120", "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, proc.returncode, cpu, after.ru_maxrss / 1024, (proc.stdout + proc.stderr)[-2000:]


def record_counts(db: Path) -> tuple[int, float]:
    """(entries of the batch, simulated fill time in s: first to last vial entry) from the demo's record."""
    conn = sqlite3.connect(db)
    try:
        entries = conn.execute("SELECT COUNT(*) FROM entry e JOIN batch b ON b.batch_id = e.batch_id "
                               "WHERE b.mode != 'registry'").fetchone()[0]
        first, last = conn.execute("SELECT MIN(ts), MAX(ts) FROM entry WHERE kind = 'vial'").fetchone()
    finally:
        conn.close()
    from fillfinish.record.chain import parse_ts

    return int(entries), (parse_ts(last) - parse_ts(first)).total_seconds() if first and last else 0.0


def main() -> None:
    """CLI entry point."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--vials", type=positive_int, default=1000, help="vials in the demo batch (default 1000)")
    parser.add_argument("--raw-n", type=positive_int, default=2000, help="raw sqlite3 commits per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ff-bench-demo-") as tmp:
        work = Path(tmp)
        raw_before = raw_sqlite_commits_per_s(work, args.raw_n)
        load_before = os.getloadavg()[0]
        wall, rc, cpu, rss_mb, tail = run_demo(work, args.vials)
        load_after = os.getloadavg()[0]
        raw_after = raw_sqlite_commits_per_s(work, args.raw_n)
        if rc != 0:
            print(f"the demo failed (exit {rc}):\n{tail}", file=sys.stderr)
            sys.exit(2)
        entries, fill_sim = record_counts(work / "demo.db")
    raw = (raw_before + raw_after) / 2
    raw_batch_s = entries / raw
    print(f"\nfillfinish demo --vials {args.vials} --speed max (controller process and its simulator child; CPU of "
          "both, peak RSS of the larger)")
    print_table(("measure", "value"), [
        ["whole process, wall", fmt(wall, "s")],
        ["whole process, wall per vial", fmt(wall / args.vials, "s")],
        ["process CPU (user + system)", f"{fmt(cpu, 's')} ({100 * cpu / wall:.0f} % of one core)"],
        ["peak RSS of the demo process", f"{rss_mb:,.1f} MB"],
        ["record entries of the batch", f"{entries:,} ({entries / args.vials:.2f} per vial)"],
        ["fill, simulated (first to last vial entry)", f"{fill_sim:,.0f} s"],
        ["raw sqlite3 commits/s before / after", f"{raw_before:,.1f} / {raw_after:,.1f} (n={args.raw_n} each)"],
        ["load average (1 min) before / after", f"{load_before:.1f} / {load_after:.1f} (2 cores)"],
    ])
    figures = [
        Figure(f"demo --vials {args.vials} --speed max, whole process wall (raw: its entries' commits)", wall,
               raw_batch_s, "s"),
        Figure("demo --speed max, wall per vial (raw: a vial's entries' commits)", wall / args.vials,
               raw_batch_s / args.vials, "s"),
    ]
    print()
    print_figures(figures)
    if args.json:
        write_figures(args.json, figures)


if __name__ == "__main__":
    main()
