"""Typed pump errors: one class per error code of the pump's status byte, plus link, timing and dispense outcomes.

The controller reacts to the class, never to a message: a DispenseOutcomeUnknown is never retried, a
DispenseTerminated carries the volume that did leave the tip, a VolumeOutOfRange is refused before any byte is sent.
"""

from __future__ import annotations


class PumpError(Exception):
    """Base of every error the dispenser driver raises."""


class PumpUsageError(PumpError, ValueError):
    """A bad argument or setting (address, model, resolution, speed, command text): nothing was sent."""


class VolumeOutOfRange(PumpUsageError):
    """A volume or position that does not fit the syringe stroke (or its contents): refused before sending."""


class ProtocolError(PumpError):
    """A reply that is not a well-formed answer (garbled, truncated, bad checksum, impossible status byte)."""


class PumpTimeout(PumpError):
    """No valid answer within the reply timeout after every allowed retry, or a move past its deadline."""


class PumpLinkLost(PumpError):
    """The serial line is gone (wraps hal.transport LinkClosed)."""


class DispenseOutcomeUnknown(PumpError):
    """Timeout, garbled answer or link loss while a dispense was under way: how much left the tip is unknown.

    Never retried by the driver: recovery (reject the vial, re-initialise) is the controller's decision.
    """


class DispenseTerminated(PumpError):
    """A dispense stopped early (by terminate()); `delivered_ul` is what left the tip, from plunger positions."""

    def __init__(self, message: str, *, delivered_ul: float, requested_ul: float) -> None:
        super().__init__(message)
        self.delivered_ul = delivered_ul
        self.requested_ul = requested_ul


class PumpDeviceError(PumpError):
    """The pump reported an error code in its status byte; subclasses name the codes the manual lists."""

    code: int = -1
    meaning: str = "unknown error code"

    def __init__(self, message: str = "", *, code: int | None = None) -> None:
        if code is not None:
            self.code = code
        super().__init__(message or f"pump error {self.code}: {self.meaning}")


class InitialisationError(PumpDeviceError):
    """Error 1: initialisation failed; cleared only by a successful initialisation."""

    code, meaning = 1, "initialisation error"


class InvalidCommand(PumpDeviceError):
    """Error 2: a command the pump does not know (commands are case-sensitive)."""

    code, meaning = 2, "invalid command"


class InvalidOperand(PumpDeviceError):
    """Error 3: an operand out of range (e.g. a move past either end of the stroke)."""

    code, meaning = 3, "invalid operand"


class InvalidCommandSequence(PumpDeviceError):
    """Error 4: commands in an order the pump cannot execute (e.g. a loop end without its start)."""

    code, meaning = 4, "invalid command sequence"


class EepromFailure(PumpDeviceError):
    """Error 6: the pump's EEPROM failed."""

    code, meaning = 6, "EEPROM failure"


class NotInitialised(PumpDeviceError):
    """Error 7: a move before the pump was initialised."""

    code, meaning = 7, "device not initialised"


class PlungerOverload(PumpDeviceError):
    """Error 9: the plunger stalled; sticky until re-initialisation."""

    code, meaning = 9, "plunger overload"


class ValveOverload(PumpDeviceError):
    """Error 10: the valve drive stalled."""

    code, meaning = 10, "valve overload"


class PlungerMoveNotAllowed(PumpDeviceError):
    """Error 11: a plunger move with the valve in bypass."""

    code, meaning = 11, "plunger move not allowed"


class CommandOverflow(PumpDeviceError):
    """Error 15: a move or valve command arrived while the pump was busy."""

    code, meaning = 15, "command overflow"


DEVICE_ERRORS: dict[int, type[PumpDeviceError]] = {
    cls.code: cls
    for cls in (
        InitialisationError,
        InvalidCommand,
        InvalidOperand,
        InvalidCommandSequence,
        EepromFailure,
        NotInitialised,
        PlungerOverload,
        ValveOverload,
        PlungerMoveNotAllowed,
        CommandOverflow,
    )
}


def error_for_code(code: int, context: str = "") -> PumpDeviceError:
    """The typed exception for a status-byte error code (PumpDeviceError with .code for codes the table lacks)."""
    cls = DEVICE_ERRORS.get(code)
    suffix = f" ({context})" if context else ""
    if cls is None:
        return PumpDeviceError(f"pump error {code}: not a documented code{suffix}", code=code)
    return cls(f"pump error {code}: {cls.meaning}{suffix}")
