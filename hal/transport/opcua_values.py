"""The OPC UA link's vocabulary: its typed errors, the security hook, the callbacks' shapes, status names, source
timestamps and the wire-log form of a value (hal/transport/opcua_link.py uses them; the PLC driver catches them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from asyncua import Client, ua
from asyncua.common.subscription import Subscription

from hal.transport.errors import LinkError

# Status codes meaning "the server does not accept who we are" rather than "the wire is gone".
_AUTH_STATUSES = frozenset(
    {
        ua.StatusCodes.BadUserAccessDenied,
        ua.StatusCodes.BadIdentityTokenInvalid,
        ua.StatusCodes.BadIdentityTokenRejected,
        ua.StatusCodes.BadCertificateInvalid,
        ua.StatusCodes.BadCertificateUntrusted,
        ua.StatusCodes.BadSecurityChecksFailed,
        ua.StatusCodes.BadSecurityPolicyRejected,
        ua.StatusCodes.BadSecurityModeRejected,
    }
)

DataCallback = Callable[[str, Any, "float | None"], Any]
LinkCallback = Callable[[bool, str], Any]


class LinkRefused(LinkError):
    """The server refused the session or the secure channel (user/password, certificate, security policy)."""


class LinkStatusError(LinkError):
    """The server answered one request with a bad OPC UA status (unknown node, not writable, type mismatch...)."""

    def __init__(self, message: str, *, device: str = "", status: str = "", node_id: str = "") -> None:
        super().__init__(message, device=device)
        self.status = status
        self.node_id = node_id


class ClientSecurity(Protocol):
    """What the link needs from a security setting: configure an asyncua Client before it connects."""

    async def apply(self, client: Client) -> None:
        """Set the client's security policy, certificates and user identity (called before each connect)."""
        ...


@dataclass
class _SubSpec:
    """A subscription the link keeps alive across reconnects."""

    handle: int
    node_ids: list[str]
    callback: DataCallback
    interval_ms: float
    live: Subscription | None = None
    task: asyncio.Task[None] | None = None
    nodes_by_id: dict[str, str] = field(default_factory=dict)  # asyncua NodeId.to_string() -> configured string


def status_name(code: int) -> str:
    """The symbolic name of an OPC UA status code (BadNodeIdUnknown, ...)."""
    try:
        return ua.StatusCode(code).name
    except Exception:  # an unknown code has no name
        return f"0x{code:08X}"


def source_time(dv: ua.DataValue | None) -> float | None:
    """A DataValue's source timestamp as Unix seconds (None when the server sent none)."""
    if dv is None:
        return None
    stamp = dv.SourceTimestamp or dv.ServerTimestamp
    if not isinstance(stamp, datetime):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def _jsonable(value: Any) -> Any:
    """A wire-log friendly form of an OPC UA value."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, ua.DataValue):
        return _jsonable(value.Value.Value if value.Value is not None else None)
    return str(value)
