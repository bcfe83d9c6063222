"""Typed transport errors: every driver maps what goes wrong on the wire to one of these."""

from __future__ import annotations


class LinkError(Exception):
    """Base of every transport failure; `device` names the device whose link failed."""

    def __init__(self, message: str, *, device: str = "", partial: bytes = b"") -> None:
        super().__init__(f"{device}: {message}" if device else message)
        self.device = device
        self.partial = partial


class LinkTimeout(LinkError):
    """No complete reply within the deadline (`partial` holds whatever did arrive)."""


class LinkClosed(LinkError):
    """The port or connection is gone (cable pulled, device node vanished, server stopped)."""
