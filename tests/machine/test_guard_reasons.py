"""Guards refuse with typed reasons: the controller acts on the Reason, never on the words of the message."""

from __future__ import annotations

import pytest

from fillfinish.machine.phases import Facts, Phase, PhaseSequence, Reason, SequenceRefused

NOW = 1_764_100_000.0


def _at_prime() -> PhaseSequence:
    seq = PhaseSequence()
    seq.restore(Phase.prime, [Phase.line_checks, Phase.uv_cycle, Phase.tip_sterilisation])
    return seq


def _facts(**changes: object) -> Facts:
    base: dict[str, object] = dict(now=NOW, uv_end_to_fill_start_s=1_800.0, tips_sterilised_to_use_s=3_600.0,
                                   line_checks_ok=True, uv_dose_reached=True, uv_end_time=NOW - 600, tips_done=True,
                                   tips_done_time=NOW - 300, lamp_confirmed_off=True, door_closed=True,
                                   environment_ok=True)
    base.update(changes)
    return Facts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "reason"), [
    ({"uv_end_time": NOW - 1_801}, Reason.uv_hold_time_expired),
    ({"uv_end_time": None}, Reason.uv_hold_time_unknown),
    ({"tips_done_time": NOW - 4_000}, Reason.tips_hold_time_expired),
    ({"tips_done_time": None}, Reason.tips_hold_time_unknown),
    ({"uv_end_time": NOW + 5}, Reason.hold_time_clock_error),
    ({"lamp_confirmed_off": False}, Reason.lamp_not_off),
    ({"door_closed": False}, Reason.door_not_closed),
    ({"environment_ok": False}, Reason.environment_not_ok),
])
def test_each_refusal_names_its_reason(changes: dict[str, object], reason: Reason) -> None:
    with pytest.raises(SequenceRefused) as info:
        _at_prime().advance(Phase.fill, _facts(**changes))
    assert [r.reason for r in info.value.refusals] == [reason]
    assert info.value.refused_for(reason) and info.value.reasons == [r.text for r in info.value.refusals]


def test_out_of_order_is_a_reason_too() -> None:
    with pytest.raises(SequenceRefused) as info:
        PhaseSequence().advance(Phase.fill, _facts())
    assert info.value.refused_for(Reason.out_of_order)
