"""PackML machine state model and batch phase sequence, each built from one explicit transition table."""

from fillfinish.machine.packml import (
    Command,
    CommandRefused,
    MachineError,
    PackMLMachine,
    State,
    StateCompleteRefused,
    Transition,
    UnknownCommand,
)
from fillfinish.machine.phases import Facts, Phase, PhaseChange, PhaseSequence, Reason, Refusal, SequenceRefused

__all__ = [
    "Command",
    "CommandRefused",
    "Facts",
    "MachineError",
    "PackMLMachine",
    "Phase",
    "PhaseChange",
    "PhaseSequence",
    "Reason",
    "Refusal",
    "SequenceRefused",
    "State",
    "StateCompleteRefused",
    "Transition",
    "UnknownCommand",
]
