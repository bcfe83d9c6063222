"""Plots of a batch record for the PDF export (matplotlib, Agg canvas, PNG bytes): UV, particles, check-weights.

Each plot is drawn only from the record (entries + the recipe snapshot of the header), so the printed record shows
what was recorded and the limits that applied. Figures are built with `matplotlib.figure.Figure` and an explicit Agg
canvas: no pyplot global state, safe in any thread, no GUI backend needed.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from fillfinish.record.export.summary import RecordSnapshot, recipe_number
from fillfinish.record.models import Entry
from fillfinish.record.typed_entries import of_type, read_typed
from fillfinish.record.vocabulary import Measurement, PhaseEvent, PostFillMonitoring, UvCycle, UvStart, VialJudgement

DPI = 150
WIDTH_IN = 7.2
PHASE_COLOURS = {
    "uv_cycle": "#c9b3ff",
    "tip_sterilisation": "#ffd9a8",
    "fill": "#b8e0c2",
    "post_fill": "#cfe3f7",
}
"""Phase shading in the particle plot (other phases are not shaded)."""


@dataclass
class UvSeries:
    """One UV cycle (reference point or tip station): seconds since its start, irradiance and dose, target."""

    cycle_id: str
    step: str
    sensor: str
    target_mj_cm2: float | None
    min_irradiance: float | None
    seconds: list[float] = field(default_factory=list)
    irradiance: list[float] = field(default_factory=list)
    dose: list[float] = field(default_factory=list)


@dataclass
class ParticleSeries:
    """Particle samples: minutes since the batch was created, counts >=0.5 um and >=5 um per m3."""

    minutes: list[float] = field(default_factory=list)
    small: list[float] = field(default_factory=list)
    large: list[float] = field(default_factory=list)


@dataclass
class WeightSeries:
    """Weighed vials: vial number, net weight, expected weight and tolerance (grams), accepted or not."""

    vial: list[int] = field(default_factory=list)
    net_g: list[float] = field(default_factory=list)
    expected_g: list[float] = field(default_factory=list)
    tolerance_g: list[float] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)



def uv_series(entries: Iterable[Entry], recipe: dict[str, Any] | None = None) -> list[UvSeries]:
    """The UV cycles of the record in order, from uv_start entries and their irradiance/dose measurements."""
    recipe = recipe or {}
    cycles: dict[str, UvSeries] = {}
    starts: dict[str, datetime] = {}
    for row in read_typed(entries):
        d = row.data
        if isinstance(d, UvStart):
            min_irr = recipe_number(recipe, "uv", "min_irradiance_mw_cm2") if d.step == "uv_cycle" else None
            cycles[d.cycle_id] = UvSeries(d.cycle_id, d.step, d.sensor, float(d.target_dose_mj_cm2), min_irr)
            starts[d.cycle_id] = row.ts
        elif isinstance(d, Measurement) and d.cycle_id in cycles:
            if d.irradiance_mw_cm2 is None or d.dose_mj_cm2 is None:
                continue
            series = cycles[d.cycle_id]
            series.seconds.append((row.ts - starts[d.cycle_id]).total_seconds())
            series.irradiance.append(float(d.irradiance_mw_cm2))
            series.dose.append(float(d.dose_mj_cm2))
        elif isinstance(d, UvCycle) and d.cycle_id in cycles:
            series = cycles[d.cycle_id]
            series.seconds.append((row.ts - starts[d.cycle_id]).total_seconds())
            series.irradiance.append(series.irradiance[-1] if series.irradiance else 0.0)
            series.dose.append(float(d.dose_mj_cm2))
    return [series for series in cycles.values() if series.seconds]


def particle_series(entries: Iterable[Entry], start: datetime) -> ParticleSeries:
    """The particle samples of the record (measurement entries with signal=particles)."""
    out = ParticleSeries()
    for row in of_type(read_typed(entries), Measurement):
        small, large = row.data.per_m3_0_5um, row.data.per_m3_5um
        if row.data.signal != "particles" or small is None or large is None:
            continue
        out.minutes.append((row.ts - start).total_seconds() / 60.0)
        out.small.append(float(small))
        out.large.append(float(large))
    return out


def weight_series(entries: Iterable[Entry]) -> WeightSeries:
    """Every weighed vial with its net weight and the tolerance band recorded with it."""
    out = WeightSeries()
    for row in of_type(read_typed(entries), VialJudgement):
        d = row.data
        if d.net_g is None or d.expected_g is None or d.tolerance_g is None:
            continue
        out.vial.append(d.vial)
        out.net_g.append(float(d.net_g))
        out.expected_g.append(float(d.expected_g))
        out.tolerance_g.append(float(d.tolerance_g))
        out.accepted.append(d.status == "accepted")
    return out


def _png(fig: Figure) -> bytes:
    """Render a figure to PNG bytes with the Agg canvas."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def uv_plot(snap: RecordSnapshot) -> bytes | None:
    """Irradiance and dose vs time of every UV cycle, with the target dose (None when no cycle is recorded)."""
    cycles = uv_series(snap.entries, snap.recipe)
    if not cycles:
        return None
    fig = Figure(figsize=(WIDTH_IN, 2.5 * len(cycles) + 0.4), layout="constrained")
    axes = fig.subplots(len(cycles), 1, squeeze=False)[:, 0]
    for ax, series in zip(axes, cycles, strict=True):
        minutes = [s / 60.0 for s in series.seconds]
        ax.plot(minutes, series.irradiance, color="#5b2a86", marker=".", label="irradiance (mW/cm²)")
        if series.min_irradiance is not None:
            ax.axhline(series.min_irradiance, color="#5b2a86", linestyle=":", linewidth=1,
                       label=f"validated min irradiance {series.min_irradiance:g}")
        ax.set_ylabel("irradiance (mW/cm²)")
        ax.set_xlabel("minutes since lamp start")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        dose_ax = ax.twinx()
        dose_ax.plot(minutes, series.dose, color="#d35400", label="dose (mJ/cm²)")
        if series.target_mj_cm2 is not None:
            dose_ax.axhline(series.target_mj_cm2, color="#c0392b", linestyle="--", linewidth=1.2,
                            label=f"target dose {series.target_mj_cm2:g}")
        dose_ax.set_ylabel("dose (mJ/cm²)")
        dose_ax.set_ylim(bottom=0, top=max(series.dose + [series.target_mj_cm2 or 0.0]) * 1.12 or 1.0)
        where = "reference point" if series.step == "uv_cycle" else "tip station" if series.step == "tip_uv" \
            else series.step
        final = series.dose[-1]
        ax.set_title(f"UV {where} ({series.cycle_id}): {final:.1f} mJ/cm² delivered", fontsize=9)
        handles = ax.get_legend_handles_labels()
        more = dose_ax.get_legend_handles_labels()
        ax.legend(handles[0] + more[0], handles[1] + more[1], fontsize=7, loc="lower right")
    return _png(fig)


def _phase_spans(entries: Sequence[Entry], start: datetime) -> list[tuple[str, float, float]]:
    """(phase, from minute, to minute) for shaded phases, from phase start/done entries."""
    spans: list[tuple[str, float, float]] = []
    opened: dict[str, float] = {}
    for row in read_typed(entries):
        minute = (row.ts - start).total_seconds() / 60.0
        d = row.data
        if isinstance(d, PhaseEvent):
            phase, event = d.phase, d.event
        elif isinstance(d, PostFillMonitoring):
            phase, event = "post_fill", {"start": "start", "end": "done"}[d.event]
        else:
            continue
        if phase not in PHASE_COLOURS:
            continue
        if event == "start":
            opened[phase] = minute
        elif event == "done" and phase in opened:
            spans.append((phase, opened.pop(phase), minute))
    if entries:
        end = (entries[-1].ts - start).total_seconds() / 60.0
        spans.extend((phase, begin, end) for phase, begin in opened.items())
    return spans


def particle_plot(snap: RecordSnapshot) -> bytes | None:
    """Particle counts >=0.5 um and >=5 um per sample with the recipe's alert and action limits (None: no samples)."""
    start = snap.header.created_at
    series = particle_series(snap.entries, start)
    if not series.minutes:
        return None
    recipe = snap.recipe
    fig = Figure(figsize=(WIDTH_IN, 4.6), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    spans = _phase_spans(list(snap.entries), start)
    for ax, values, size, key in ((axes[0], series.small, "0.5", "0_5um"), (axes[1], series.large, "5", "5um")):
        alert = recipe_number(recipe, "environment", f"particles_{key}_alert_per_m3")
        action = recipe_number(recipe, "environment", f"particles_{key}_action_per_m3")
        shown: set[str] = set()
        for phase, begin, end in spans:
            ax.axvspan(begin, end, color=PHASE_COLOURS[phase], alpha=0.35, linewidth=0,
                       label=phase.replace("_", " ") if phase not in shown else None)
            shown.add(phase)
        colours = ["#c0392b" if action is not None and v >= action else
                   "#e67e22" if alert is not None and v >= alert else "#1f4e79" for v in values]
        ax.plot(series.minutes, values, color="#1f4e79", linewidth=0.8)
        ax.scatter(series.minutes, values, c=colours, s=14, zorder=3)
        top = max(values)
        if alert is not None:
            ax.axhline(alert, color="#e67e22", linestyle="--", linewidth=1, label=f"alert {alert:,.0f}")
            top = max(top, alert)
        if action is not None:
            ax.axhline(action, color="#c0392b", linestyle="-", linewidth=1.2, label=f"action {action:,.0f}")
            top = max(top, action)
        ax.set_ylim(bottom=0, top=top * 1.15 or 1.0)
        ax.set_ylabel(f"≥{size} µm per m³")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    axes[0].set_title(f"Particles, grade A ({len(series.minutes)} samples)", fontsize=9)
    axes[1].set_xlabel("minutes since the batch was created")
    return _png(fig)


def check_weight_plot(snap: RecordSnapshot) -> bytes | None:
    """Net weight per weighed vial with the expected weight and tolerance band (None when no vial was weighed)."""
    series = weight_series(snap.entries)
    if not series.vial:
        return None
    fig = Figure(figsize=(WIDTH_IN, 3.0), layout="constrained")
    ax = fig.add_subplot()
    mg = 1000.0
    low = [(e - t) * mg for e, t in zip(series.expected_g, series.tolerance_g, strict=True)]
    high = [(e + t) * mg for e, t in zip(series.expected_g, series.tolerance_g, strict=True)]
    x = series.vial
    if len(x) == 1:
        band_x = [x[0] - 0.5, x[0] + 0.5]
        low, high, expected = low * 2, high * 2, [series.expected_g[0] * mg] * 2
    else:
        band_x, expected = x, [e * mg for e in series.expected_g]
    ax.fill_between(band_x, low, high, step="mid", color="#b8e0c2", alpha=0.6, label="tolerance band")
    ax.plot(band_x, expected, color="#2e7d32", linestyle="--", linewidth=1, drawstyle="steps-mid",
            label="expected")
    ok = [i for i, a in enumerate(series.accepted) if a]
    bad = [i for i, a in enumerate(series.accepted) if not a]
    ax.scatter([x[i] for i in ok], [series.net_g[i] * mg for i in ok], color="#1f4e79", s=18, zorder=3,
               label="accepted")
    if bad:
        ax.scatter([x[i] for i in bad], [series.net_g[i] * mg for i in bad], color="#c0392b", marker="x", s=30,
                   zorder=4, label="rejected")
    values = [v * mg for v in series.net_g] + low + high
    span = max(values) - min(values) or 1.0
    ax.set_ylim(min(values) - 0.15 * span, max(values) + 0.15 * span)
    ax.set_xlabel("vial")
    ax.set_ylabel("net weight (mg)")
    ax.set_title(f"Check-weighing: {len(x)} vials weighed, {len(bad)} outside tolerance or rejected", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", ncols=4)
    return _png(fig)


PLOTS: tuple[tuple[str, Any], ...] = (
    ("UV irradiance and dose", uv_plot),
    ("Particle counts", particle_plot),
    ("Check-weights", check_weight_plot),
)
"""Title and function of every plot, in print order."""


def render_plots(snap: RecordSnapshot) -> dict[str, bytes]:
    """Title -> PNG bytes of every plot the record has data for."""
    out: dict[str, bytes] = {}
    for title, make in PLOTS:
        png = make(snap)
        if png is not None:
            out[title] = png
    return out
