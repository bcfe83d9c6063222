"""Transports: the one place bytes and OPC UA calls cross to a device, with locking, deadlines and the wire log."""

from hal.transport.errors import LinkClosed, LinkError, LinkTimeout
from hal.transport.wirelog import ReplayLink, ReplayMismatch, WireEvent, WireLog

__all__ = ["LinkClosed", "LinkError", "LinkTimeout", "ReplayLink", "ReplayMismatch", "WireEvent", "WireLog"]
