"""PackML machine: the table against an independent transcription of the domain brief, refusals, callbacks, threads."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fillfinish.machine.packml import (
    ACTING_STATES,
    NEXT,
    STATE_COMPLETE,
    WAIT_STATES,
    Command,
    CommandRefused,
    MachineError,
    PackMLMachine,
    State,
    StateCompleteRefused,
    Transition,
    UnknownCommand,
    shortest_path,
    valid_commands_in,
)

S = State
SC = STATE_COMPLETE

# Written by hand from /work/shared/domain.md "PackML machine states" (plus Hold from Suspended, the optional
# 2015 extension we adopt), independently of fillfinish/machine/packml.py:TRANSITIONS.
_STOP_FROM = [
    S.Resetting, S.Idle, S.Starting, S.Execute, S.Completing, S.Complete, S.Holding, S.Held, S.Unholding,
    S.Suspending, S.Suspended, S.Unsuspending,
]
EXPECTED: dict[tuple[str, State], State] = {
    ("Reset", S.Stopped): S.Resetting,
    ("Reset", S.Complete): S.Resetting,
    ("Start", S.Idle): S.Starting,
    ("Hold", S.Execute): S.Holding,
    ("Hold", S.Suspended): S.Holding,
    ("Unhold", S.Held): S.Unholding,
    ("Suspend", S.Execute): S.Suspending,
    ("Unsuspend", S.Suspended): S.Unsuspending,
    ("Clear", S.Aborted): S.Clearing,
    ("Complete", S.Execute): S.Completing,
    **{("Stop", s): S.Stopping for s in _STOP_FROM},
    **{("Abort", s): S.Aborting for s in State if s not in (S.Aborting, S.Aborted)},
    (SC, S.Resetting): S.Idle,
    (SC, S.Starting): S.Execute,
    (SC, S.Execute): S.Completing,
    (SC, S.Completing): S.Complete,
    (SC, S.Holding): S.Held,
    (SC, S.Unholding): S.Execute,
    (SC, S.Suspending): S.Suspended,
    (SC, S.Unsuspending): S.Execute,
    (SC, S.Stopping): S.Stopped,
    (SC, S.Aborting): S.Aborted,
    (SC, S.Clearing): S.Stopped,
}

VALID = sorted(EXPECTED.items(), key=lambda kv: (kv[0][1].value, kv[0][0]))
INVALID = [(s, c) for s in State for c in Command if (c.name, s) not in EXPECTED]


def machine_in(state: State, log: list[Transition] | None = None) -> PackMLMachine:
    """A machine driven from Stopped (or Aborted) into `state` through the table; the record list is emptied."""
    records: list[Transition] = [] if log is None else log
    start = S.Aborted if state == S.Aborted else S.Stopped
    m = PackMLMachine(start, on_transition=records.append)
    for trigger in shortest_path(start, state):
        if trigger == SC:
            m.state_complete(actor="test")
        else:
            m.command(trigger, actor="test")
    assert m.state == state
    records.clear()
    return m


def test_table_matches_the_domain_brief() -> None:
    assert NEXT == EXPECTED


def test_numbers_and_kinds() -> None:
    assert [s.value for s in sorted(State)] == list(range(1, 18))
    assert [c.value for c in sorted(Command)] == list(range(1, 11))
    assert {s.value for s in WAIT_STATES} == {2, 4, 5, 9, 11, 17}
    assert WAIT_STATES | ACTING_STATES == set(State) and not WAIT_STATES & ACTING_STATES
    # every acting state ends by state complete, no wait state does
    assert {s for (t, s) in EXPECTED if t == SC} == set(ACTING_STATES)


@pytest.mark.parametrize(("key", "dest"), VALID, ids=[f"{s.name}-{t}" for (t, s), _ in VALID])
def test_every_valid_transition(key: tuple[str, State], dest: State) -> None:
    trigger, source = key
    log: list[Transition] = []
    m = machine_in(source, log)
    if trigger == SC:
        assert m.state_complete(source, actor="worker", reason="done") == dest
    else:
        assert m.command(trigger.upper(), actor="op1", reason="because") == dest
    assert m.state == dest
    assert m.is_wait_state == (dest in WAIT_STATES)
    actor = "worker" if trigger == SC else "op1"
    reason = "done" if trigger == SC else "because"
    assert log == [Transition(source, dest, trigger, actor, reason)]


@pytest.mark.parametrize(("state", "cmd"), INVALID, ids=[f"{s.name}-{c.name}" for s, c in INVALID])
def test_every_invalid_command_is_refused(state: State, cmd: Command) -> None:
    log: list[Transition] = []
    m = machine_in(state, log)
    with pytest.raises(CommandRefused) as info:
        m.command(cmd.value, actor="op1")
    err = info.value
    assert (err.command, err.state, err.actor) == (cmd, state, "op1")
    assert err.valid == m.valid_commands() == valid_commands_in(state)
    text = str(err)
    assert cmd.name in text and f"{state.name} ({state.value})" in text and err.reason in text
    for valid in err.valid:
        assert f"{valid.name} ({valid.value})" in text
    if not err.valid:
        assert "none" in text
    assert m.state == state and log == []


@pytest.mark.parametrize("state", sorted(WAIT_STATES))
def test_state_complete_refused_in_wait_states(state: State) -> None:
    m = machine_in(state)
    with pytest.raises(StateCompleteRefused, match="wait state"):
        m.state_complete()
    assert m.state == state


def test_stale_state_complete_is_refused() -> None:
    m = machine_in(S.Starting)
    m.command("Stop", actor="op1")  # the line-check worker is still finishing Starting
    with pytest.raises(StateCompleteRefused, match="Starting arrived after the machine moved to Stopping"):
        m.state_complete(S.Starting)
    assert m.state == S.Stopping


@pytest.mark.parametrize(
    ("given", "expected"),
    [(Command.Hold, Command.Hold), (4, Command.Hold), ("hold", Command.Hold), (" HOLD ", Command.Hold),
     ("4", Command.Hold), ("susPEND", Command.Suspend), (10, Command.Complete)],
)
def test_command_accepts_enum_number_and_name(given: object, expected: Command) -> None:
    m = machine_in(S.Execute)
    assert expected in m.valid_commands()
    m.command(given, actor="op1")  # type: ignore[arg-type]
    assert m.state == EXPECTED[(expected.name, S.Execute)]


@pytest.mark.parametrize("given", [0, 11, -1, True, "jump", "", "Hold!", None, 3.0])
def test_unknown_command(given: object) -> None:
    m = machine_in(S.Execute)
    with pytest.raises(UnknownCommand) as info:
        m.command(given, actor="op1")  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert "Reset (1)" in str(info.value) and "Complete (10)" in str(info.value)
    assert m.state == S.Execute


def test_actor_is_required() -> None:
    m = PackMLMachine()
    with pytest.raises(ValueError, match="actor"):
        m.command("Reset", actor=" ")
    assert m.state == S.Stopped


def test_power_up_states() -> None:
    assert PackMLMachine().state == S.Stopped
    assert PackMLMachine(S.Aborted).state == S.Aborted
    with pytest.raises(ValueError, match="powers up in Stopped"):
        PackMLMachine(S.Execute)


def test_failed_record_write_prevents_the_transition() -> None:
    class RecordWriteError(Exception):
        pass

    fail = True
    seen: list[tuple[Transition, State]] = []

    def record(t: Transition) -> None:
        seen.append((t, m.state))  # runs before the change: the machine is still in the source state
        if fail:
            raise RecordWriteError("disk full")

    m = PackMLMachine(on_transition=record)
    with pytest.raises(RecordWriteError):
        m.command("Reset", actor="op1")
    assert m.state == S.Stopped
    fail = False
    assert m.command("Reset", actor="op1") == S.Resetting
    assert [state for _, state in seen] == [S.Stopped, S.Stopped]
    # a failing record on state complete leaves the acting state as it was, too
    fail = True
    with pytest.raises(RecordWriteError):
        m.state_complete()
    assert m.state == S.Resetting


def test_command_from_inside_on_transition_is_refused() -> None:
    def record(t: Transition) -> None:
        m.command("Abort", actor="nested")

    m = PackMLMachine(on_transition=record)
    with pytest.raises(MachineError, match="inside on_transition"):
        m.command("Reset", actor="op1")
    assert m.state == S.Stopped


@pytest.mark.parametrize(
    ("state", "applied"),
    [(S.Execute, True), (S.Suspended, True), (S.Idle, False), (S.Starting, False), (S.Unholding, False),
     (S.Holding, False), (S.Held, False), (S.Aborted, False), (S.Suspending, False)],
)
def test_request_hold(state: State, applied: bool) -> None:
    log: list[Transition] = []
    m = machine_in(state, log)
    assert m.request_hold("particle-monitor", "0.5 um action limit") is applied
    if applied:
        assert m.state == S.Holding
        assert log == [Transition(state, S.Holding, "Hold", "particle-monitor", "0.5 um action limit")]
    else:
        assert m.state == state and log == []


class PackMLModelComparison(RuleBasedStateMachine):
    """Random commands, state completes and hold requests agree with EXPECTED and never leave the State set."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Transition] = []
        self.model = S.Stopped
        self.machine = PackMLMachine(on_transition=self.log.append)

    @rule(cmd=st.sampled_from(list(Command)), form=st.sampled_from(["enum", "int", "name"]))
    def command(self, cmd: Command, form: str) -> None:
        given = {"enum": cmd, "int": int(cmd), "name": cmd.name.lower()}[form]
        dest = EXPECTED.get((cmd.name, self.model))
        if dest is None:
            with pytest.raises(CommandRefused):
                self.machine.command(given, actor="op")
        else:
            assert self.machine.command(given, actor="op") == dest
            self.model = dest

    @rule()
    def state_complete(self) -> None:
        dest = EXPECTED.get((SC, self.model))
        if dest is None:
            with pytest.raises(StateCompleteRefused):
                self.machine.state_complete()
        else:
            assert self.machine.state_complete(self.model) == dest
            self.model = dest

    @rule()
    def request_hold(self) -> None:
        dest = EXPECTED.get(("Hold", self.model))
        assert self.machine.request_hold("monitor") is (dest is not None)
        if dest is not None:
            self.model = dest

    @invariant()
    def agrees(self) -> None:
        assert self.machine.state == self.model
        assert isinstance(self.machine.state, State)
        assert set(self.machine.valid_commands()) == {c for c in Command if (c.name, self.model) in EXPECTED}
        if self.log:
            assert self.log[-1].dest == self.model
            assert all(a.dest == b.source for a, b in zip(self.log, self.log[1:], strict=False))


TestPackMLModel = PackMLModelComparison.TestCase
TestPackMLModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_threads_do_not_interleave_transitions() -> None:
    """Several threads hammer one machine; every recorded change is whole, chained and in the table."""
    log: list[Transition] = []
    bad: list[str] = []

    def record(t: Transition) -> None:
        if m.state != t.source:  # nobody else may move the machine while a change is being recorded
            bad.append(f"state {m.state.name} during {t}")
        log.append(t)

    m = PackMLMachine(on_transition=record)

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(400):
            try:
                if rnd.random() < 0.5:
                    m.state_complete(actor=f"w{seed}")
                elif rnd.random() < 0.2:
                    m.request_hold(f"w{seed}")
                else:
                    m.command(rnd.choice(list(Command)), actor=f"w{seed}")
            except (CommandRefused, StateCompleteRefused):
                pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert bad == []
    assert len(log) > 100
    assert log[0].source == S.Stopped and log[-1].dest == m.state
    for a, b in zip(log, log[1:], strict=False):
        assert a.dest == b.source
    for t in log:
        assert EXPECTED[(t.trigger, t.source)] == t.dest
