"""Typed errors of the PLC driver: what the controller can tell apart when the PLC or its link misbehaves."""

from __future__ import annotations


class PlcError(Exception):
    """Base of every PLC driver error."""


class PlcConfigError(PlcError, ValueError):
    """The site config's [plc] section is wrong (missing/unknown signal names, malformed node ids, bad security)."""


class PlcLinkLost(PlcError):
    """The OPC UA connection to the PLC is down (server stopped, network gone); the driver reconnects by itself."""


class PlcTimeout(PlcError):
    """The PLC did not answer one request within the deadline."""


class PlcAuthRefused(PlcError):
    """The PLC refused the session: wrong user name/password, or certificate/security settings rejected."""


class PlcBadNode(PlcError):
    """The site config names a node the PLC does not have (or one of the wrong kind); names signal and node id."""

    def __init__(self, signal: str, node_id: str, why: str = "the server has no such node") -> None:
        super().__init__(
            f"PLC signal {signal!r}: node {node_id!r}: {why} (check [plc.nodes] {signal} in the site config)"
        )
        self.signal = signal
        self.node_id = node_id


class PlcWriteRefused(PlcError):
    """The PLC refused a write or a method call (not writable, access denied, type mismatch, command rejected)."""


class PositionerFault(PlcError):
    """The vial positioner reports a fault (jam) instead of reaching its target."""


class PositionerTimeout(PlcError):
    """The vial positioner did not report in position at the target within the time budget."""
