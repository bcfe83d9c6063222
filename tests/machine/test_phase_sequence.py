"""Batch phase sequence: order, guards with their numbers, hold times, repeat, restore, record-first callback."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillfinish.machine.phases import (
    FILL_GUARDS,
    PHASES,
    Facts,
    Phase,
    PhaseChange,
    PhaseSequence,
    SequenceRefused,
)

P = Phase
NOW = 1_764_100_000.0


def good(**changes: object) -> Facts:
    """Facts under which every guard holds (UV ended 600 s ago, tips 300 s ago), with `changes` applied."""
    facts = Facts(
        now=NOW,
        uv_end_to_fill_start_s=1_800.0,
        tips_sterilised_to_use_s=3_600.0,
        line_checks_ok=True,
        uv_dose_reached=True,
        uv_end_time=NOW - 600,
        tips_done=True,
        tips_done_time=NOW - 300,
        lamp_confirmed_off=True,
        door_closed=True,
        environment_ok=True,
    )
    return dataclasses.replace(facts, **changes)  # type: ignore[arg-type]


def sequence_at(phase: Phase, log: list[PhaseChange] | None = None) -> PhaseSequence:
    """A sequence advanced with good facts up to `phase`; the change log is emptied."""
    changes: list[PhaseChange] = [] if log is None else log
    seq = PhaseSequence(on_change=changes.append)
    for p in PHASES[: PHASES.index(phase) + 1]:
        seq.advance(p, good())
    changes.clear()
    return seq


def test_full_sequence_in_order() -> None:
    log: list[PhaseChange] = []
    seq = PhaseSequence(on_change=log.append)
    assert (seq.current, seq.completed, seq.next_phase, seq.finished) == (None, [], P.line_checks, False)
    for i, phase in enumerate(PHASES):
        seq.advance(phase.value, good(), actor="op1")
        assert seq.current == phase
        assert seq.completed == list(PHASES[:i])
    assert seq.next_phase is None
    seq.finish(actor="op1", reason="post-fill window over")
    assert (seq.current, seq.completed, seq.finished) == (None, list(PHASES), True)
    assert [(c.source, c.dest, c.trigger) for c in log] == [
        (None, P.line_checks, "line_checks"),
        (P.line_checks, P.uv_cycle, "uv_cycle"),
        (P.uv_cycle, P.tip_sterilisation, "tip_sterilisation"),
        (P.tip_sterilisation, P.prime, "prime"),
        (P.prime, P.fill, "fill"),
        (P.fill, P.post_fill, "post_fill"),
        (P.post_fill, None, "finish"),
    ]
    assert log[-1] == PhaseChange(P.post_fill, None, "finish", "op1", "post-fill window over")


def test_fill_before_uv_is_refused() -> None:
    log: list[PhaseChange] = []
    seq = sequence_at(P.line_checks, log)
    with pytest.raises(SequenceRefused) as info:
        seq.advance(P.fill, good())
    assert info.value.phase == P.fill
    assert info.value.reasons == [
        "fill cannot follow line_checks: the next phase is uv_cycle (would skip [uv_cycle, tip_sterilisation, prime])"
    ]
    assert seq.current == P.line_checks and log == []


@pytest.mark.parametrize(
    ("at", "to", "fragment"),
    [
        (None, P.uv_cycle, "uv_cycle cannot come first: the next phase is line_checks"),
        (P.prime, P.uv_cycle, "does not go back; use repeat"),
        (P.fill, P.fill, "fill cannot follow fill"),
        (P.post_fill, P.fill, "post_fill is the last phase"),
        (P.fill, P.prime, r"does not go back\)"),
    ],
)
def test_out_of_order_is_refused(at: Phase | None, to: Phase, fragment: str) -> None:
    seq = PhaseSequence() if at is None else sequence_at(at)
    with pytest.raises(SequenceRefused, match=fragment):
        seq.advance(to, good())
    assert seq.current == at


def test_nothing_after_finish() -> None:
    seq = sequence_at(P.post_fill)
    seq.finish()
    with pytest.raises(SequenceRefused, match="finished"):
        seq.advance(P.line_checks, good())
    with pytest.raises(SequenceRefused, match="post_fill in progress"):
        seq.finish()


def test_finish_needs_post_fill() -> None:
    seq = sequence_at(P.fill)
    with pytest.raises(SequenceRefused, match="now in fill"):
        seq.finish()
    assert seq.current == P.fill


def test_expired_hold_times_give_the_numbers() -> None:
    seq = sequence_at(P.prime)
    facts = good(uv_end_time=NOW - 2_460, tips_done_time=NOW - 3_600.5)
    with pytest.raises(SequenceRefused) as info:
        seq.advance(P.fill, facts)
    assert info.value.reasons == [
        "UV cycle end to fill start is 2,460 s, limit 1,800 s (Annex 1 8.18)",
        "sterilised tips to use is 3,600.5 s, limit 3,600 s (Annex 1 8.18)",
    ]
    assert "cannot enter fill: UV cycle end to fill start is 2,460 s" in str(info.value)
    assert seq.current == P.prime
    assert seq.blockers(P.fill, facts) == info.value.reasons


def test_hold_time_exactly_at_the_limit_is_allowed() -> None:
    seq = sequence_at(P.prime)
    seq.advance(P.fill, good(uv_end_time=NOW - 1_800, tips_done_time=NOW - 3_600))
    assert seq.current == P.fill


def test_unknown_or_future_start_times_are_refused() -> None:
    seq = sequence_at(P.tip_sterilisation)
    with pytest.raises(SequenceRefused) as info:
        seq.advance(P.prime, good(uv_end_time=None, tips_done_time=NOW + 12))
    assert info.value.reasons == [
        "UV cycle end time is not known, so the hold time UV cycle end to fill start cannot be checked (Annex 1 8.18)",
        "tip sterilisation time is 12 s after now (clock or record error)",
    ]


_BREAK = {
    "uv_dose_reached": {"uv_dose_reached": False},
    "tips_done": {"tips_done": False},
    "uv_hold_time": {"uv_end_time": NOW - 1_801},
    "tips_hold_time": {"tips_done_time": NOW - 4_000},
    "lamp_confirmed_off": {"lamp_confirmed_off": False},
    "door_closed": {"door_closed": False},
    "environment_ok": {"environment_ok": False},
}


@pytest.mark.parametrize("guard", FILL_GUARDS)
@pytest.mark.parametrize("to", [P.prime, P.fill])
def test_each_fill_guard_blocks_alone(guard: str, to: Phase) -> None:
    seq = sequence_at(PHASES[PHASES.index(to) - 1])
    with pytest.raises(SequenceRefused) as info:
        seq.advance(to, good(**_BREAK[guard]))
    assert len(info.value.reasons) == 1
    assert seq.current == PHASES[PHASES.index(to) - 1]


def test_every_failed_guard_is_named() -> None:
    seq = sequence_at(P.prime)
    bad = Facts(now=NOW, uv_end_to_fill_start_s=1_800, tips_sterilised_to_use_s=3_600)
    with pytest.raises(SequenceRefused) as info:
        seq.advance(P.fill, bad)
    text = " | ".join(info.value.reasons)
    assert len(info.value.reasons) == len(FILL_GUARDS)
    for words in ["target dose", "tip sterilisation is not done", "UV cycle end time is not known",
                  "tip sterilisation time is not known", "lamp is not confirmed off", "door is not closed",
                  "environment is not within limits"]:
        assert words in text


def test_earlier_guards() -> None:
    seq = sequence_at(P.line_checks)
    with pytest.raises(SequenceRefused, match="line checks have not passed"):
        seq.advance(P.uv_cycle, good(line_checks_ok=False))
    seq.advance(P.uv_cycle, good())
    with pytest.raises(SequenceRefused, match="UV cycle has not reached its target dose"):
        seq.advance(P.tip_sterilisation, good(uv_dose_reached=False))
    assert seq.current == P.uv_cycle


def test_repeat_uv_invalidates_later_phases() -> None:
    log: list[PhaseChange] = []
    seq = sequence_at(P.prime, log)
    with pytest.raises(SequenceRefused, match="2,460 s"):
        seq.advance(P.fill, good(uv_end_time=NOW - 2_460))
    seq.repeat(P.uv_cycle, actor="op1", reason="UV hold time expired")
    assert seq.current == P.uv_cycle and seq.completed == [P.line_checks]
    assert log == [PhaseChange(P.prime, P.uv_cycle, "repeat_uv_cycle", "op1", "UV hold time expired")]
    with pytest.raises(SequenceRefused, match="the next phase is tip_sterilisation"):
        seq.advance(P.prime, good())
    for p in (P.tip_sterilisation, P.prime, P.fill):
        seq.advance(p, good())
    assert seq.current == P.fill


def test_repeat_tips_keeps_uv() -> None:
    seq = sequence_at(P.prime)
    seq.repeat("tip_sterilisation")
    assert seq.current == P.tip_sterilisation
    assert seq.completed == [P.line_checks, P.uv_cycle]


@pytest.mark.parametrize(
    ("at", "phase", "fragment"),
    [
        (P.fill, P.uv_cycle, "before fill starts; now in fill"),
        (P.post_fill, P.tip_sterilisation, "now in post_fill"),
        (P.line_checks, P.uv_cycle, "after it started"),
        (P.uv_cycle, P.tip_sterilisation, "after it started"),
        (P.prime, P.prime, "can be repeated, not prime"),
        (P.prime, P.line_checks, "can be repeated, not line_checks"),
    ],
)
def test_repeat_refused(at: Phase, phase: Phase, fragment: str) -> None:
    seq = sequence_at(at)
    with pytest.raises(SequenceRefused, match=fragment):
        seq.repeat(phase)
    assert seq.current == at


def test_failed_record_write_prevents_the_change() -> None:
    fail = True

    def record(change: PhaseChange) -> None:
        if fail:
            raise OSError("record store down")

    seq = PhaseSequence(on_change=record)
    with pytest.raises(OSError):
        seq.advance(P.line_checks, good())
    assert seq.current is None
    fail = False
    seq.advance(P.line_checks, good())
    seq.advance(P.uv_cycle, good())
    fail = True
    with pytest.raises(OSError):
        seq.repeat(P.uv_cycle)
    with pytest.raises(OSError):
        seq.advance(P.tip_sterilisation, good())
    assert seq.current == P.uv_cycle


def test_restore() -> None:
    log: list[PhaseChange] = []
    seq = PhaseSequence(on_change=log.append)
    seq.restore(P.fill, [P.line_checks, P.uv_cycle, P.tip_sterilisation, P.prime])
    assert seq.current == P.fill and log == []
    seq.advance(P.post_fill, good())
    seq.restore(None, [])
    assert seq.current is None and seq.next_phase == P.line_checks
    seq.restore(None, list(PHASES))
    assert seq.finished
    seq.restore("uv_cycle", ["line_checks"])
    assert seq.current == P.uv_cycle


@pytest.mark.parametrize("current", list(PHASES))
def test_restore_stays_in_a_phase_whose_done_entry_is_the_last_one(current: Phase) -> None:
    """A stop between a phase's "done" and the next one's "start" (for post_fill: before Completing ended) leaves
    it current, so its step runs again; the next phase's guards were never checked."""
    seq = PhaseSequence()
    seq.restore(current, list(PHASES[: PHASES.index(current) + 1]))
    assert seq.current == current and not seq.finished


@pytest.mark.parametrize(
    ("current", "completed", "fragment"),
    [
        (P.fill, [P.line_checks, P.prime], "needs completed = [line_checks, uv_cycle, tip_sterilisation, prime]"),
        (P.line_checks, [P.uv_cycle], "needs completed = []"),
        (P.prime, list(PHASES[:5]), "needs completed = [line_checks, uv_cycle, tip_sterilisation]"),
        (None, [P.line_checks], "empty or all phases"),
        ("filling", [], "unknown phase 'filling'"),
    ],
)
def test_restore_refuses_an_inconsistent_record(current: object, completed: list[Phase], fragment: str) -> None:
    seq = sequence_at(P.uv_cycle)
    with pytest.raises(ValueError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        seq.restore(current, completed)  # type: ignore[arg-type]
    assert seq.current == P.uv_cycle


@pytest.mark.parametrize(
    ("field", "value"),
    [("uv_end_to_fill_start_s", 0), ("tips_sterilised_to_use_s", -5), ("uv_end_to_fill_start_s", math.inf),
     ("now", math.nan), ("uv_end_time", "yesterday")],
)
def test_bad_facts_are_named(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"Facts.{field}"):
        good(**{field: value})


def test_unknown_phase_and_missing_facts() -> None:
    seq = sequence_at(P.tip_sterilisation)
    with pytest.raises(ValueError, match="unknown phase 'filling'; phases are"):
        seq.advance("filling", good())
    with pytest.raises(SequenceRefused, match="no Facts supplied"):
        seq.advance(P.prime, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="actor"):
        seq.advance(P.prime, good(), actor="")


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["advance", "repeat"]),
            st.sampled_from(list(PHASES)),
            st.fixed_dictionaries(
                {k: st.booleans() for k in ("line_checks_ok", "uv_dose_reached", "tips_done", "lamp_confirmed_off",
                                            "door_closed", "environment_ok")}
            ),
            st.floats(min_value=0, max_value=5_000),
        ),
        max_size=30,
    )
)
def test_random_steps_keep_the_sequence_consistent(
    steps: list[tuple[str, Phase, dict[str, bool], float]],
) -> None:
    """Whatever is tried, completed is the prefix before current, and advance succeeds exactly when nothing blocks."""
    seq = PhaseSequence()
    for action, phase, flags, age in steps:
        facts = good(**flags, uv_end_time=NOW - age, tips_done_time=NOW - age)
        before = (seq.current, seq.completed)
        if action == "advance":
            blockers = seq.blockers(phase, facts)
            try:
                seq.advance(phase, facts)
                assert blockers == [] and seq.current == phase
            except SequenceRefused as err:
                assert err.reasons == blockers != []
                assert (seq.current, seq.completed) == before
        else:
            try:
                seq.repeat(phase)
                assert seq.current == phase
            except SequenceRefused:
                assert (seq.current, seq.completed) == before
        current = seq.current
        expected = [] if current is None else list(PHASES[: PHASES.index(current)])
        assert seq.completed == expected
