"""The phase guards: the Facts the controller supplies, each guard's check and the typed Refusal it gives.

Pure functions of a Facts snapshot (no I/O, no clock of their own), so the sequence (phases.py) and the state
diagram (diagram.py) share one definition of what each guard means, with its Annex 1 8.18 hold times.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What the controller knows when it asks to change phase; times are simulated Unix seconds (Clock.now())."""

    now: float
    uv_end_to_fill_start_s: float
    tips_sterilised_to_use_s: float
    line_checks_ok: bool = False
    uv_dose_reached: bool = False
    uv_end_time: float | None = None
    tips_done: bool = False
    tips_done_time: float | None = None
    lamp_confirmed_off: bool = False
    door_closed: bool = False
    environment_ok: bool = False

    def __post_init__(self) -> None:
        """Refuse hold-time limits that are not positive seconds and times that are not finite."""
        for name in ("uv_end_to_fill_start_s", "tips_sterilised_to_use_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"Facts.{name} must be a number of seconds > 0, got {value!r}")
        for name in ("now", "uv_end_time", "tips_done_time"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
                raise ValueError(f"Facts.{name} must be a finite Unix time in seconds, got {value!r}")


def _secs(value: float) -> str:
    """2460 -> '2,460'; 1800.4 -> '1,800.4'."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


class Reason(enum.StrEnum):
    """Why a phase change is refused: a typed name the controller acts on (the text is only for people)."""

    line_checks_not_passed = "line_checks_not_passed"
    uv_dose_not_reached = "uv_dose_not_reached"
    tips_not_done = "tips_not_done"
    uv_hold_time_expired = "uv_hold_time_expired"
    uv_hold_time_unknown = "uv_hold_time_unknown"
    tips_hold_time_expired = "tips_hold_time_expired"
    tips_hold_time_unknown = "tips_hold_time_unknown"
    hold_time_clock_error = "hold_time_clock_error"
    lamp_not_off = "lamp_not_off"
    door_not_closed = "door_not_closed"
    environment_not_ok = "environment_not_ok"
    out_of_order = "out_of_order"
    no_facts = "no_facts"


@dataclass(frozen=True)
class Refusal:
    """One failed check: its typed `reason` and the sentence shown to a person (str() gives the sentence)."""

    reason: Reason
    text: str

    def __str__(self) -> str:
        """The sentence for people."""
        return self.text


def _hold_time(what: str, start: str, since: float | None, now: float, limit: float,
               expired: Reason, unknown: Reason) -> Refusal | None:
    """Refusal when the hold time `what` from `since` (named `start`) to `now` is not met, or None if it is."""
    if since is None:
        return Refusal(unknown, f"{start} is not known, so the hold time {what} cannot be checked (Annex 1 8.18)")
    elapsed = now - since
    if elapsed < 0:
        return Refusal(Reason.hold_time_clock_error, f"{start} is {_secs(-elapsed)} s after now (clock or record error)")
    if elapsed > limit:
        return Refusal(expired, f"{what} is {_secs(elapsed)} s, limit {_secs(limit)} s (Annex 1 8.18)")
    return None


def _check(ok: bool, reason: Reason, text: str) -> Refusal | None:
    """None when `ok`, else the refusal."""
    return None if ok else Refusal(reason, text)


Guard = Callable[[Facts], "Refusal | None"]

GUARDS: dict[str, Guard] = {
    "line_checks_ok": lambda f: _check(f.line_checks_ok, Reason.line_checks_not_passed, "line checks have not passed"),
    "uv_dose_reached": lambda f: _check(f.uv_dose_reached, Reason.uv_dose_not_reached,
                                        "UV cycle has not reached its target dose"),
    "tips_done": lambda f: _check(f.tips_done, Reason.tips_not_done, "dispensing-tip sterilisation is not done"),
    "uv_hold_time": lambda f: _hold_time(
        "UV cycle end to fill start", "UV cycle end time", f.uv_end_time, f.now, f.uv_end_to_fill_start_s,
        Reason.uv_hold_time_expired, Reason.uv_hold_time_unknown,
    ),
    "tips_hold_time": lambda f: _hold_time(
        "sterilised tips to use", "tip sterilisation time", f.tips_done_time, f.now, f.tips_sterilised_to_use_s,
        Reason.tips_hold_time_expired, Reason.tips_hold_time_unknown,
    ),
    "lamp_confirmed_off": lambda f: _check(f.lamp_confirmed_off, Reason.lamp_not_off, "UV lamp is not confirmed off"),
    "door_closed": lambda f: _check(f.door_closed, Reason.door_not_closed, "door is not closed"),
    "environment_ok": lambda f: _check(f.environment_ok, Reason.environment_not_ok,
                                       "environment is not within limits"),
}
"""Guard name -> check returning the typed Refusal, or None when the guard holds."""

FILL_GUARDS: tuple[str, ...] = (
    "uv_dose_reached", "tips_done", "uv_hold_time", "tips_hold_time", "lamp_confirmed_off", "door_closed",
    "environment_ok",
)
"""Guards for prime and fill."""


def failed_guards(guards: tuple[str, ...], facts: Facts) -> list[Refusal]:
    """Refusals of every guard in `guards` that does not hold for `facts`."""
    return [r for r in (GUARDS[g](facts) for g in guards) if r is not None]
