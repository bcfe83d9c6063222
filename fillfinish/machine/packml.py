"""The PackML machine state model (ANSI/ISA-TR88.00.02, OPC 30050) as one explicit transition table.

`TRANSITIONS` is the single source of truth: `PackMLMachine` builds its `transitions.Machine` from it and
`fillfinish.machine.diagram` draws the documented state diagram from it, so code and doc cannot drift apart.

Choices (see docs/state-diagram.md):
- Hold is valid from Execute and, as the optional extension of the 2015 state model (OPC 30050 v1.01 Figure 15,
  transition SuspendedToHolding), from Suspended: an interlock that trips while the line waits for vials must still
  hold the machine. Hold is not valid from the other acting states (Starting, Unholding, Suspending, Unsuspending):
  `request_hold` returns False there and a level-triggered monitor asks again at the next safe point.
- `on_transition` runs before the state changes (transitions' `before_state_change`), so a failed record write
  raises out of `command`/`state_complete` and leaves the state as it was (architecture rule 5: record first).
- Every public method holds one re-entrant lock: monitors may request Hold from another thread or task.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from transitions import EventData, Machine

log = structlog.get_logger(__name__)


class State(enum.IntEnum):
    """PackML machine states with their standard numbers (StateCurrent)."""

    Clearing = 1
    Stopped = 2
    Starting = 3
    Idle = 4
    Suspended = 5
    Execute = 6
    Stopping = 7
    Aborting = 8
    Aborted = 9
    Holding = 10
    Held = 11
    Unholding = 12
    Suspending = 13
    Unsuspending = 14
    Resetting = 15
    Completing = 16
    Complete = 17


class Command(enum.IntEnum):
    """PackML state commands with their standard numbers (CntrlCmd)."""

    Reset = 1
    Start = 2
    Stop = 3
    Hold = 4
    Unhold = 5
    Suspend = 6
    Unsuspend = 7
    Abort = 8
    Clear = 9
    Complete = 10


STATE_COMPLETE = "StateComplete"
"""Trigger name of the "state complete" (SC) event that ends an acting state."""

WAIT_STATES: frozenset[State] = frozenset(
    {State.Stopped, State.Idle, State.Suspended, State.Aborted, State.Held, State.Complete}
)
"""States that wait for a command; every other state is an acting state that ends by StateComplete."""

ACTING_STATES: frozenset[State] = frozenset(set(State) - WAIT_STATES)
"""States that do work and end by StateComplete (or are interrupted by Stop/Abort/Hold)."""

POWER_UP_STATES: frozenset[State] = frozenset({State.Stopped, State.Aborted})
"""The machine powers up in Stopped, or in Aborted after an unclean shutdown (domain brief)."""

_ABORTABLE = tuple(s for s in State if s not in (State.Aborting, State.Aborted))

TransitionRow = tuple[str, tuple[State, ...], State]

TRANSITIONS: list[TransitionRow] = [
    # commands: wait (and some acting) states -> acting states
    (Command.Reset.name, (State.Stopped, State.Complete), State.Resetting),
    (Command.Start.name, (State.Idle,), State.Starting),
    (
        Command.Stop.name,
        (
            State.Resetting, State.Idle, State.Starting, State.Execute, State.Completing, State.Complete,
            State.Holding, State.Held, State.Unholding, State.Suspending, State.Suspended, State.Unsuspending,
        ),
        State.Stopping,
    ),
    (Command.Hold.name, (State.Execute, State.Suspended), State.Holding),
    (Command.Unhold.name, (State.Held,), State.Unholding),
    (Command.Suspend.name, (State.Execute,), State.Suspending),
    (Command.Unsuspend.name, (State.Suspended,), State.Unsuspending),
    (Command.Abort.name, _ABORTABLE, State.Aborting),
    (Command.Clear.name, (State.Aborted,), State.Clearing),
    (Command.Complete.name, (State.Execute,), State.Completing),
    # state complete: acting state -> next state
    (STATE_COMPLETE, (State.Resetting,), State.Idle),
    (STATE_COMPLETE, (State.Starting,), State.Execute),
    (STATE_COMPLETE, (State.Execute,), State.Completing),
    (STATE_COMPLETE, (State.Completing,), State.Complete),
    (STATE_COMPLETE, (State.Holding,), State.Held),
    (STATE_COMPLETE, (State.Unholding,), State.Execute),
    (STATE_COMPLETE, (State.Suspending,), State.Suspended),
    (STATE_COMPLETE, (State.Unsuspending,), State.Execute),
    (STATE_COMPLETE, (State.Stopping,), State.Stopped),
    (STATE_COMPLETE, (State.Aborting,), State.Aborted),
    (STATE_COMPLETE, (State.Clearing,), State.Stopped),
]
"""The whole PackML model: (trigger, source states, destination). Triggers are Command names or STATE_COMPLETE."""


def _index(rows: Iterable[TransitionRow]) -> dict[tuple[str, State], State]:
    """(trigger, source) -> dest; rejects a table that gives one trigger two destinations from one state."""
    table: dict[tuple[str, State], State] = {}
    for trigger, sources, dest in rows:
        for source in sources:
            if (trigger, source) in table:
                raise ValueError(f"transition table: {trigger} from {source.name} defined twice")
            table[(trigger, source)] = dest
    return table


NEXT: dict[tuple[str, State], State] = _index(TRANSITIONS)
"""Lookup of TRANSITIONS: (trigger, source) -> destination."""


def valid_commands_in(state: State) -> tuple[Command, ...]:
    """Commands accepted in `state`, in PackML number order."""
    return tuple(c for c in Command if (c.name, state) in NEXT)


def after_state_complete(state: State) -> State | None:
    """Where StateComplete leads from `state`; None for a wait state."""
    return NEXT.get((STATE_COMPLETE, state))


def shortest_path(source: State, dest: State) -> list[str]:
    """Triggers (Command names / STATE_COMPLETE) that lead from `source` to `dest` in the fewest steps."""
    previous: dict[State, tuple[State, str] | None] = {source: None}
    queue = deque([source])
    while queue:
        here = queue.popleft()
        if here == dest:
            path: list[str] = []
            step = previous[here]
            while step is not None:
                path.append(step[1])
                step = previous[step[0]]
            return path[::-1]
        for (trigger, src), nxt in NEXT.items():
            if src == here and nxt not in previous:
                previous[nxt] = (here, trigger)
                queue.append(nxt)
    raise ValueError(f"no path from {source.name} to {dest.name}")


def parse_command(cmd: Command | int | str) -> Command:
    """Turn a Command, its number or its name (any case) into a Command; raise UnknownCommand otherwise."""
    if isinstance(cmd, Command):
        return cmd
    if isinstance(cmd, int) and not isinstance(cmd, bool):
        try:
            return Command(cmd)
        except ValueError:
            pass
    elif isinstance(cmd, str):
        text = cmd.strip()
        if text.isdigit():
            try:
                return Command(int(text))
            except ValueError:
                pass
        for c in Command:
            if c.name.lower() == text.lower():
                return c
    raise UnknownCommand(cmd)


def _describe(commands: Sequence[Command]) -> str:
    """'Stop (3), Abort (8)' or 'none'."""
    return ", ".join(f"{c.name} ({c.value})" for c in commands) or "none"


class MachineError(Exception):
    """Base of the errors raised by the PackML machine."""


class UnknownCommand(MachineError, ValueError):
    """A command that is not a PackML command (bad number or name)."""

    def __init__(self, given: object) -> None:
        self.given = given
        super().__init__(f"unknown PackML command {given!r}; allowed: {_describe(list(Command))} (name or number)")


class CommandRefused(MachineError):
    """A valid PackML command that is not allowed in the current state; the state is unchanged."""

    def __init__(self, command: Command, state: State, reason: str = "", *, actor: str = "") -> None:
        self.command = command
        self.state = state
        self.actor = actor
        self.valid = valid_commands_in(state)
        self.reason = reason or f"{command.name} is not a valid command in {state.name}"
        super().__init__(
            f"{command.name} ({command.value}) refused in state {state.name} ({state.value}): {self.reason}; "
            f"valid commands in {state.name}: {_describe(self.valid)}"
            + ("" if self.valid else " (acting state: wait for it to complete, or Stop/Abort where allowed)")
        )


class StateCompleteRefused(MachineError):
    """StateComplete was signalled in a wait state, or for an acting state the machine has already left."""

    def __init__(self, state: State, reason: str) -> None:
        self.state = state
        self.reason = reason
        super().__init__(f"state complete refused in state {state.name} ({state.value}): {reason}")


@dataclass(frozen=True)
class Transition:
    """One state change, handed to `on_transition` before it takes effect (the controller records it)."""

    source: State
    dest: State
    trigger: str
    actor: str
    reason: str = ""


class _Model:
    """The object `transitions` binds its triggers to; private so nobody bypasses the lock and the checks."""

    state: State


class PackMLMachine:
    """Thread-safe PackML state machine built on `transitions.Machine` from the module's TRANSITIONS table."""

    def __init__(
        self,
        initial: State = State.Stopped,
        on_transition: Callable[[Transition], None] | None = None,
        *,
        _restoring: bool = False,
    ) -> None:
        initial = State(initial)
        if initial not in POWER_UP_STATES and not _restoring:
            raise ValueError(
                f"initial state {initial.name} is not allowed: the machine powers up in Stopped, "
                "or Aborted after an unclean shutdown"
            )
        self._lock = threading.RLock()
        self._busy = False
        self._on_transition = on_transition
        self._model = _Model()
        self._machine = Machine(
            model=self._model,
            states=State,
            transitions=[
                {"trigger": trigger, "source": list(sources), "dest": dest} for trigger, sources, dest in TRANSITIONS
            ],
            initial=initial,
            auto_transitions=False,
            send_event=True,
            before_state_change=[self._before_change],
        )

    @classmethod
    def restored(cls, state: State, on_transition: Callable[[Transition], None] | None = None) -> "PackMLMachine":
        """A machine rebuilt from the record in the state the record says (crash recovery brings a batch to Held)."""
        return cls(state, on_transition, _restoring=True)

    # -- queries -------------------------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        """The current PackML state."""
        with self._lock:
            return State(self._model.state)

    @property
    def is_wait_state(self) -> bool:
        """True in a wait state (waits for a command), False in an acting state (waits for StateComplete)."""
        return self.state in WAIT_STATES

    def valid_commands(self) -> tuple[Command, ...]:
        """Commands accepted in the current state, in PackML number order."""
        with self._lock:
            return valid_commands_in(self.state)

    # -- changes -------------------------------------------------------------------------------------------------
    def command(self, cmd: Command | int | str, *, actor: str, reason: str = "") -> State:
        """Apply a PackML command; return the new state or raise CommandRefused (state unchanged)."""
        command = parse_command(cmd)
        _check_actor(actor)
        with self._lock:
            state = self.state
            if (command.name, state) not in NEXT:
                log.debug("packml.command_refused", command=command.name, state=state.name, actor=actor)
                raise CommandRefused(command, state, actor=actor)
            return self._fire(command.name, actor, reason)

    def state_complete(self, expected: State | None = None, *, actor: str = "system", reason: str = "") -> State:
        """End the current acting state (SC); with `expected`, refuse if the machine already left that state."""
        _check_actor(actor)
        with self._lock:
            state = self.state
            if expected is not None and State(expected) != state:
                raise StateCompleteRefused(
                    state, f"completion of {State(expected).name} arrived after the machine moved to {state.name}"
                )
            if (STATE_COMPLETE, state) not in NEXT:
                raise StateCompleteRefused(state, f"{state.name} is a wait state; it ends only by a command")
            return self._fire(STATE_COMPLETE, actor, reason)

    def request_hold(self, actor: str, reason: str = "") -> bool:
        """Hold if Hold is valid now (Execute, Suspended) and return True; otherwise do nothing and return False."""
        _check_actor(actor)
        with self._lock:
            if (Command.Hold.name, self.state) not in NEXT:
                return False
            self._fire(Command.Hold.name, actor, reason)
            return True

    # -- internals -----------------------------------------------------------------------------------------------
    def _fire(self, trigger: str, actor: str, reason: str) -> State:
        """Run one trigger through `transitions` (lock held); refuse re-entry from inside on_transition."""
        if self._busy:
            raise MachineError(f"{trigger} requested from inside on_transition; issue it after the change completes")
        self._busy = True
        try:
            getattr(self._model, trigger)(actor=actor, reason=reason)
        finally:
            self._busy = False
        new = State(self._model.state)
        log.debug("packml.transition", trigger=trigger, state=new.name, actor=actor)
        return new

    def _before_change(self, event: EventData) -> None:
        """transitions' before_state_change hook: hand the Transition to on_transition before the state moves."""
        if self._on_transition is None:
            return
        kwargs: dict[str, Any] = event.kwargs
        assert event.transition is not None and event.transition.dest is not None
        self._on_transition(
            Transition(
                source=State[event.transition.source],
                dest=State[event.transition.dest],
                trigger=event.event.name if event.event is not None else "",
                actor=kwargs["actor"],
                reason=kwargs.get("reason", ""),
            )
        )


def _check_actor(actor: str) -> None:
    """Every change names who did it (21 CFR 11.10(e)); reject an empty actor."""
    if not isinstance(actor, str) or not actor.strip():
        raise ValueError("actor must be a non-empty user id or component name (who did it is recorded)")
