"""Typed balance errors: every MT-SICS status answer, garbage on the line and link failure maps to one of these."""

from __future__ import annotations


class BalanceError(Exception):
    """Base of every balance failure; `command` is what we sent, `reply` the line that came back (if any)."""

    def __init__(self, message: str, *, command: str = "", reply: bytes = b"") -> None:
        super().__init__(message)
        self.command = command
        self.reply = reply


class BalanceCommandError(BalanceError, ValueError):
    """A command the host must not send: non-ASCII, control characters or an embedded CR / LF."""


class BalanceBusy(BalanceError):
    """Status `I`: the balance cannot execute the command now (busy, or no stability within its own time limit)."""


class BalanceNotStable(BalanceBusy):
    """No stable weight before the caller's deadline: the balance kept answering `S I`."""


class BalanceOverload(BalanceError):
    """Status `+`: the load is above the weighing range (or the zero range for Z)."""


class BalanceUnderload(BalanceError):
    """Status `-`: the load is below the weighing range (pan missing, or below the zero range for Z)."""


class BalanceSyntaxError(BalanceError):
    """`ES`: the balance did not recognise the command."""


class BalanceTransmissionError(BalanceError):
    """`ET`: the balance received a corrupted command (parity, framing, bad characters)."""


class BalanceLogicalError(BalanceError):
    """`EL` or status `L`: command understood but not executable (for instance a parameter out of range)."""


class BalanceProtocolError(BalanceError):
    """A reply line that is not MT-SICS, or an answer that does not belong to the command sent."""


class BalanceUnitError(BalanceError):
    """The balance reports weights in another unit than the one the driver was told to expect."""


class BalanceTimeout(BalanceError):
    """No complete reply line within the reply deadline."""


class BalanceLinkLost(BalanceError):
    """The serial line is gone (wraps hal.transport.LinkClosed / LinkError)."""
