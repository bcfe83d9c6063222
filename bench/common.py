"""Timing helpers shared by the benchmarks: percentiles, a fixed-width table printer, figures handed to run_all.

House rule "speed is measured, not asserted": a benchmark prints our figure beside a raw baseline measured in the
same run on the same machine, and the ratio between them; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence, TextIO

import structlog

REPO = Path(__file__).resolve().parent.parent


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) of `values` by linear interpolation between the closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be 0..100, got {p!r}")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(k), math.ceil(k)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def median(values: Sequence[float]) -> float:
    """The 50th percentile."""
    return percentile(values, 50.0)


def p99(values: Sequence[float]) -> float:
    """The 99th percentile."""
    return percentile(values, 99.0)


@dataclass(frozen=True)
class Stats:
    """Summary of latency samples, in seconds."""

    n: int
    median: float
    p99: float
    mean: float
    max: float

    @staticmethod
    def of(samples: Sequence[float]) -> "Stats":
        """Stats of a list of durations (seconds)."""
        return Stats(len(samples), median(samples), p99(samples), sum(samples) / len(samples), max(samples))


def time_calls(fn: Callable[[], object], n: int, warmup: int = 10) -> list[float]:
    """Call `fn` `warmup` times unmeasured, then `n` times, returning each call's perf_counter duration (s)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


@dataclass(frozen=True)
class Figure:
    """One benchmark figure: ours beside the raw baseline of the same run. ratio = ours / raw.

    `better` says which way is good: "lower" for latencies (ratio 1.3 = we take 30 % longer), "higher" for rates
    (ratio 0.2 = we reach a fifth of the raw rate).
    """

    name: str
    ours: float
    raw: float
    unit: str
    better: str = "lower"

    @property
    def ratio(self) -> float:
        """ours / raw."""
        return self.ours / self.raw if self.raw else float("nan")


def fmt(value: float, unit: str) -> str:
    """A value with its unit, milliseconds/microseconds for durations, 4 significant digits."""
    if unit == "s":
        if abs(value) < 1e-3:
            return f"{value * 1e6:.1f} us"
        if abs(value) < 1.0:
            return f"{value * 1e3:.3f} ms"
        return f"{value:.3f} s"
    return f"{value:,.4g} {unit}".strip()


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]], out: TextIO = sys.stdout) -> None:
    """Print a plain fixed-width table (first column left-aligned, the others right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        """One row padded to the column widths."""
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(line(cells[0]), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells[1:]:
        print(line(row), file=out)


def figure_rows(figures: Iterable[Figure]) -> list[list[str]]:
    """Rows of (figure, ours, raw, ratio ours/raw, better) for print_table."""
    return [[f.name, fmt(f.ours, f.unit), fmt(f.raw, f.unit), f"{f.ratio:.2f}", f.better] for f in figures]


FIGURE_HEADERS = ("figure", "ours", "raw baseline", "ratio ours/raw", "better")


def print_figures(figures: Sequence[Figure], out: TextIO = sys.stdout) -> None:
    """The summary table of figures."""
    print_table(FIGURE_HEADERS, figure_rows(figures), out=out)


def write_figures(path: Path | str, figures: Sequence[Figure], notes: Sequence[str] = ()) -> None:
    """Save figures (and notes) as JSON for run_all."""
    Path(path).write_text(json.dumps({"figures": [asdict(f) for f in figures], "notes": list(notes)}, indent=1))


def read_figures(path: Path | str) -> tuple[list[Figure], list[str]]:
    """Figures and notes saved by write_figures."""
    data = json.loads(Path(path).read_text())
    return [Figure(**f) for f in data["figures"]], list(data.get("notes", []))


def quiet_logging() -> None:
    """Log like the `fillfinish` CLI without --verbose (warnings and up to stderr), so we time production settings."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)


def base_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the --json option every benchmark takes (run_all reads the figures from it)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return parser


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, with a clear message otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value
