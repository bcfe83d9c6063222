"""The dispensing pump: Tecan Cavro XCalibur / XLP 6000 driver, its protocol functions and typed errors."""

from hal.dispenser.base import Dispenser, PumpStatus
from hal.dispenser.driver import CavroPump
from hal.dispenser.memory import InMemoryDispenser
from hal.dispenser.errors import (
    CommandOverflow,
    DispenseOutcomeUnknown,
    DispenseTerminated,
    EepromFailure,
    InitialisationError,
    InvalidCommand,
    InvalidCommandSequence,
    InvalidOperand,
    NotInitialised,
    PlungerMoveNotAllowed,
    PlungerOverload,
    ProtocolError,
    PumpDeviceError,
    PumpError,
    PumpLinkLost,
    PumpTimeout,
    PumpUsageError,
    ValveOverload,
    VolumeOutOfRange,
)

__all__ = [
    "CavroPump",
    "CommandOverflow",
    "DispenseOutcomeUnknown",
    "DispenseTerminated",
    "Dispenser",
    "EepromFailure",
    "InMemoryDispenser",
    "InitialisationError",
    "InvalidCommand",
    "InvalidCommandSequence",
    "InvalidOperand",
    "NotInitialised",
    "PlungerMoveNotAllowed",
    "PlungerOverload",
    "ProtocolError",
    "PumpDeviceError",
    "PumpError",
    "PumpLinkLost",
    "PumpStatus",
    "PumpTimeout",
    "PumpUsageError",
    "ValveOverload",
    "VolumeOutOfRange",
]
