"""The batch phase sequence inside Execute, enforced as guarded transitions (21 CFR 11.10(f) operational checks).

line_checks -> uv_cycle -> tip_sterilisation -> prime -> fill -> post_fill -> (finish; the machine goes Completing).
`PHASE_TRANSITIONS` is the single explicit table: `PhaseSequence` builds a `transitions.Machine` from it (the guards
become its conditions) and `fillfinish.machine.diagram` draws it. Guards read a `Facts` snapshot the controller
supplies, so this module does no I/O and no clock reading of its own. The table and the phases live in
phase_table.py, the Facts, guards and refusals in phase_guards.py; all are importable from here.

Choices:
- Prime and fill have the same guards (UV dose, tips, both hold times, lamp off, door closed, environment ok):
  prime already puts product into the fluid path, and the Annex 1 8.18 hold times are judged "as if fill started now".
- `repeat(uv_cycle | tip_sterilisation)` is allowed only before fill starts (from uv_cycle, tip_sterilisation or
  prime); it makes that phase current again, so every later phase must be done again.
- The Annex 1 8.18 limit "start to end of filling" is a running timer during fill, not a sequence guard: the
  controller turns it into a Hold/deviation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from transitions import EventData, Machine

from fillfinish.machine.packml import MachineError
from fillfinish.machine.phase_guards import (  # noqa: F401 - re-exported: callers import the guards from here
    FILL_GUARDS,
    GUARDS,
    Facts,
    Guard,
    Reason,
    Refusal,
    failed_guards,
)
from fillfinish.machine.phase_table import (  # noqa: F401 - re-exported: callers import the table from here
    FINISHED,
    NOT_STARTED,
    PHASE_TRANSITIONS,
    PHASES,
    REPEATABLE,
    SEQUENCE_STATES,
    Phase,
    PhaseRow,
    parse_phase,
    phase_names,
)

log = structlog.get_logger(__name__)


class SequenceRefused(MachineError):
    """A phase change that the sequence or its guards do not allow. `refusals` holds every failed check as a typed
    Refusal (act on `Refusal.reason`); `reasons` is their text, for people."""

    def __init__(self, phase: Phase | str, refusals: list[Refusal]) -> None:
        """Keep the refused phase and every failed check; the message lists them all."""
        self.phase = phase
        self.refusals = list(refusals)
        self.reasons = [r.text for r in self.refusals]
        super().__init__(f"cannot enter {phase}: " + "; ".join(self.reasons))

    def refused_for(self, *reasons: Reason) -> bool:
        """True when any of `reasons` is among the failed checks."""
        return any(r.reason in reasons for r in self.refusals)


@dataclass(frozen=True)
class PhaseChange:
    """One phase change, handed to `on_change` before it takes effect (the controller records it)."""

    source: Phase | None
    dest: Phase | None
    trigger: str
    actor: str
    reason: str = ""


def _phase_or_none(name: str) -> Phase | None:
    """Sequence state name -> Phase, None for NOT_STARTED / FINISHED."""
    return Phase(name) if name in Phase.__members__ else None


class _Model:
    """The object `transitions` binds the sequence triggers to; private so callers go through the checks."""

    state: str


class PhaseSequence:
    """The enforced batch phase sequence; `advance` refuses a skip or a failed guard with SequenceRefused."""

    def __init__(self, on_change: Callable[[PhaseChange], None] | None = None) -> None:
        """Build the transitions machine from PHASE_TRANSITIONS; `on_change` hears each change before it happens."""
        self._on_change = on_change
        self._lock = threading.RLock()
        self._reasons: list[Refusal] = []
        self._model = _Model()
        self._machine = Machine(
            model=self._model,
            states=list(SEQUENCE_STATES),
            transitions=[
                {"trigger": trigger, "source": list(sources), "dest": dest, "conditions": [self._condition(guards)]}
                for trigger, sources, dest, guards in PHASE_TRANSITIONS
            ],
            initial=NOT_STARTED,
            auto_transitions=False,
            send_event=True,
            before_state_change=[self._before_change],
        )

    # -- queries -------------------------------------------------------------------------------------------------
    @property
    def current(self) -> Phase | None:
        """The phase in progress; None before line_checks and after finish()."""
        with self._lock:
            return _phase_or_none(self._model.state)

    @property
    def completed(self) -> list[Phase]:
        """Phases done, in order (always the prefix of PHASES before `current`)."""
        with self._lock:
            state = self._model.state
            if state == FINISHED:
                return list(PHASES)
            if state == NOT_STARTED:
                return []
            return list(PHASES[: PHASES.index(Phase(state))])

    @property
    def finished(self) -> bool:
        """True once post_fill has been finished."""
        with self._lock:
            return self._model.state == FINISHED

    @property
    def next_phase(self) -> Phase | None:
        """The only phase `advance` accepts now; None when there is none (finish() after post_fill)."""
        with self._lock:
            for trigger, sources, dest, _guards in PHASE_TRANSITIONS:
                if trigger in Phase.__members__ and self._model.state in sources:
                    return Phase(dest)
            return None

    def blockers(self, to: Phase | str, facts: Facts) -> list[str]:
        """Every reason (text) `advance(to, facts)` would be refused now; empty when it would succeed."""
        return [r.text for r in self.refusals(to, facts)]

    def refusals(self, to: Phase | str, facts: Facts) -> list[Refusal]:
        """Every typed Refusal `advance(to, facts)` would raise now; empty when it would succeed."""
        phase = parse_phase(to)
        with self._lock:
            row = self._row(phase.value)
            if row is None:
                return [self._order_reason(phase)]
            return failed_guards(row[3], facts)

    # -- changes -------------------------------------------------------------------------------------------------
    def advance(self, to: Phase | str, facts: Facts, *, actor: str = "system", reason: str = "") -> None:
        """Enter phase `to` (completing the current one); raise SequenceRefused naming every failed guard."""
        phase = parse_phase(to)
        with self._lock:
            if self._row(phase.value) is None:
                raise SequenceRefused(phase, [self._order_reason(phase)])
            self._fire(phase.value, phase, facts=facts, actor=actor, reason=reason)

    def finish(self, *, actor: str = "system", reason: str = "") -> None:
        """Complete post_fill: the sequence is done and the machine may go Completing."""
        with self._lock:
            if self._row("finish") is None:
                raise SequenceRefused(FINISHED, [Refusal(Reason.out_of_order,
                                                          f"finish needs post_fill in progress; now {self._where()}")])
            self._fire("finish", FINISHED, facts=None, actor=actor, reason=reason)

    def repeat(self, phase: Phase | str, *, actor: str = "system", reason: str = "") -> None:
        """Make UV cycle or tip sterilisation current again (hold-time expiry); later phases must be redone."""
        target = parse_phase(phase)
        with self._lock:
            if target not in REPEATABLE:
                raise SequenceRefused(
                    target, [Refusal(Reason.out_of_order,
                                     f"only {', '.join(sorted(REPEATABLE))} can be repeated, not {target}")]
                )
            trigger = f"repeat_{target.value}"
            if self._row(trigger) is None:
                raise SequenceRefused(
                    target,
                    [Refusal(Reason.out_of_order, f"{target} can be repeated only after it started and before fill "
                             f"starts; now {self._where()}")],
                )
            self._fire(trigger, target, facts=None, actor=actor, reason=reason)

    def restore(self, current: Phase | str | None, completed: list[Phase] | list[str]) -> None:
        """Rebuild from the record after a restart (no on_change call); raise ValueError if the two disagree.

        `current` may itself be among `completed`: a stop between its "done" entry and the next phase's "start" (or,
        for post_fill, before Completing ended) leaves that record. The sequence then stays in `current`, so its step
        runs again after an unhold: the conservative reading, since the next phase's guards were never checked."""
        done = [parse_phase(p) for p in completed]
        if current is None:
            if done not in ([], list(PHASES)):
                raise ValueError(
                    f"restore: with no current phase, completed must be empty or all phases, got {phase_names(done)}"
                )
            state = NOT_STARTED if not done else FINISHED
        else:
            phase = parse_phase(current)
            expected = list(PHASES[: PHASES.index(phase)])
            if done not in (expected, [*expected, phase]):
                raise ValueError(
                    f"restore: current phase {phase} needs completed = {phase_names(expected)} (or with {phase} "
                    f"itself done), got {phase_names(done)}"
                )
            state = phase.value
        with self._lock:
            self._machine.set_state(state, model=self._model)
            log.debug("phases.restored", state=state)

    # -- internals -----------------------------------------------------------------------------------------------
    def _row(self, trigger: str) -> PhaseRow | None:
        """The table row for `trigger` from the current state, or None if there is none."""
        for row in PHASE_TRANSITIONS:
            if row[0] == trigger and self._model.state in row[1]:
                return row
        return None

    def _where(self) -> str:
        """Human name of the current sequence state."""
        state = self._model.state
        return {NOT_STARTED: "not started", FINISHED: "finished"}.get(state, f"in {state}")

    def _order_reason(self, phase: Phase) -> Refusal:
        """Why `phase` is out of order now."""
        return Refusal(Reason.out_of_order, self._order_text(phase))

    def _order_text(self, phase: Phase) -> str:
        """The sentence saying why `phase` is out of order now."""
        nxt = self.next_phase
        allowed = f"the next phase is {nxt}" if nxt is not None else "post_fill is the last phase (finish ends it)"
        if self._model.state == FINISHED:
            return f"{phase} cannot be entered: the sequence is finished"
        if self._model.state == NOT_STARTED:
            return f"{phase} cannot come first: {allowed}"
        here = Phase(self._model.state)
        if PHASES.index(phase) > PHASES.index(here):
            skipped = PHASES[PHASES.index(here) + 1 : PHASES.index(phase)]
            return f"{phase} cannot follow {here}: {allowed} (would skip {phase_names(list(skipped))})"
        hint = "; use repeat" if phase in REPEATABLE and self._row(f"repeat_{phase.value}") is not None else ""
        return f"{phase} cannot follow {here}: {allowed} (the sequence does not go back{hint})"

    def _fire(self, trigger: str, dest: Phase | str, *, facts: Facts | None, actor: str, reason: str) -> None:
        """Run one trigger through `transitions` (lock held); raise SequenceRefused if a condition failed."""
        if not isinstance(actor, str) or not actor.strip():
            raise ValueError("actor must be a non-empty user id or component name (who did it is recorded)")
        self._reasons = []
        done = getattr(self._model, trigger)(facts=facts, actor=actor, reason=reason)
        if not done:
            raise SequenceRefused(dest, list(self._reasons))
        log.debug("phases.changed", trigger=trigger, state=self._model.state, actor=actor)

    def _condition(self, guards: tuple[str, ...]) -> Callable[[EventData], bool]:
        """A transitions condition evaluating `guards` against the event's Facts, keeping every failure reason."""

        def check(event: EventData) -> bool:
            """True when every guard holds; the failure reasons are kept for SequenceRefused."""
            if not guards:
                return True
            facts = event.kwargs.get("facts")
            if not isinstance(facts, Facts):
                self._reasons = [Refusal(Reason.no_facts, "no Facts supplied to check the guards")]
                return False
            self._reasons = failed_guards(guards, facts)
            return not self._reasons

        return check

    def _before_change(self, event: EventData) -> None:
        """transitions' before_state_change hook: hand the PhaseChange to on_change before the phase moves."""
        if self._on_change is None:
            return
        kwargs: dict[str, Any] = event.kwargs
        assert event.transition is not None and event.transition.dest is not None
        self._on_change(
            PhaseChange(
                source=_phase_or_none(event.transition.source),
                dest=_phase_or_none(event.transition.dest),
                trigger=event.event.name if event.event is not None else "",
                actor=kwargs["actor"],
                reason=kwargs.get("reason", ""),
            )
        )
