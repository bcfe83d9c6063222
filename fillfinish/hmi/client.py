"""Client of the controller's OPC UA server (fillfinish/server.py): read the PackML tags, send commands, acknowledge.

Used by the operator console and by the CLI (`fillfinish command ...`); every failure is one of the typed errors below,
so callers can show a clear message instead of a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from asyncua import Client, Node, ua

from fillfinish.server import ACK_METHOD, COMMAND_METHOD, NAMESPACE_URI, OBJECT_NAME, STATUS_OBJECT, STATUS_TAGS

log = structlog.get_logger("fillfinish.hmi.client")


class ClientError(Exception):
    """Base of the controller client's errors."""


class ControllerUnavailable(ClientError):
    """Not connected, the connection was lost, or the endpoint does not serve the fillfinish controller."""


class RequestRejected(ClientError):
    """The controller answered a request with a Bad status; `text` is its explanation, `status` the code name."""

    def __init__(self, text: str, *, status: str) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


class CommandRejected(RequestRejected):
    """A PackML command was refused (BadInvalidState), unknown (BadInvalidArgument) or failed in the controller."""

    def __init__(self, text: str, *, status: str, command: str) -> None:
        super().__init__(text, status=status)
        self.command = command


class AcknowledgeRejected(RequestRejected):
    """An alarm acknowledgement was refused (unknown alarm id, missing actor, controller error)."""


def decode_status(raw: dict[str, Any]) -> dict[str, Any]:
    """Tag values as read -> Python values: Alarms list[dict], Environment dict, ValidCommands list, LastCommandResult."""
    out = dict(raw)
    out["Alarms"] = _json(raw.get("Alarms"), [])
    out["Environment"] = _json(raw.get("Environment"), {})
    out["EnvironmentLimits"] = _json(raw.get("EnvironmentLimits"), {})
    out["LastCommandResult"] = _json(raw.get("LastCommandResult"), None)
    commands = raw.get("ValidCommands") or ""
    out["ValidCommands"] = [c for c in str(commands).split(",") if c]
    return out


def _json(text: object, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(str(text))
    except ValueError:
        return default


class ControllerClient:
    """One OPC UA session to the controller server; async connect/close, status(), command(), acknowledge()."""

    def __init__(self, endpoint: str, *, timeout_s: float = 4.0) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._client: Client | None = None
        self._ns = 0
        self._object: Node | None = None
        self._tag_nodes: list[Node] = []

    @property
    def connected(self) -> bool:
        """True between a successful connect() and close() (or a detected connection loss)."""
        return self._client is not None

    async def connect(self) -> None:
        """Open the session and locate the FillFinish object; ControllerUnavailable if that fails."""
        if self._client is not None:
            return
        client = Client(self.endpoint, timeout=self.timeout_s)
        client.session_timeout = 600_000
        try:
            await client.connect()
        except Exception as exc:
            raise ControllerUnavailable(f"cannot connect to the controller at {self.endpoint}: {_why(exc)}") from exc
        try:
            ns = await client.get_namespace_index(NAMESPACE_URI)
        except Exception as exc:
            await _quiet_disconnect(client)
            raise ControllerUnavailable(
                f"{self.endpoint} is not a fillfinish controller (namespace {NAMESPACE_URI} missing)"
            ) from exc
        self._client = client
        self._ns = ns
        self._object = client.get_node(ua.NodeId(OBJECT_NAME, ns))
        self._tag_nodes = [client.get_node(ua.NodeId(f"{STATUS_OBJECT}.{name}", ns)) for name in STATUS_TAGS]
        log.info("controller_client_connected", endpoint=self.endpoint)

    async def close(self) -> None:
        """Close the session (idempotent, never raises)."""
        client, self._client = self._client, None
        if client is not None:
            await _quiet_disconnect(client)

    async def __aenter__(self) -> ControllerClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _require(self) -> Client:
        if self._client is None:
            raise ControllerUnavailable(f"not connected to the controller at {self.endpoint}")
        return self._client

    async def status(self) -> dict[str, Any]:
        """All Status tags in one read, decoded by `decode_status`; ControllerUnavailable when the link is gone."""
        client = self._require()
        try:
            values = await client.read_values(self._tag_nodes)
        except Exception as exc:
            await self.close()
            raise ControllerUnavailable(f"lost the controller at {self.endpoint}: {_why(exc)}") from exc
        return decode_status(dict(zip(STATUS_TAGS, values, strict=True)))

    async def command(self, name: str | int, actor: str, reason: str = "") -> str:
        """Send a PackML command (name or number); returns the new state name, raises CommandRejected with the text."""
        first = ua.Variant(name, ua.VariantType.Int32) if isinstance(name, int) else ua.Variant(str(name))
        status, text = await self._call(
            COMMAND_METHOD, [first, ua.Variant(actor, ua.VariantType.String), ua.Variant(reason, ua.VariantType.String)]
        )
        if not status.is_good():
            raise CommandRejected(text, status=status.name, command=str(name))
        return text

    async def acknowledge(self, alarm_id: int, actor: str) -> str:
        """Acknowledge an alarm as `actor`; returns the confirmation, raises AcknowledgeRejected with the text."""
        status, text = await self._call(
            ACK_METHOD, [ua.Variant(int(alarm_id), ua.VariantType.Int32), ua.Variant(actor, ua.VariantType.String)]
        )
        if not status.is_good():
            raise AcknowledgeRejected(text, status=status.name)
        return text

    async def _call(self, method: str, args: list[ua.Variant]) -> tuple[ua.StatusCode, str]:
        """Call a method and keep the text output even on a Bad status (asyncua's call_method would drop it)."""
        client = self._require()
        request = ua.CallMethodRequest()
        request.ObjectId = ua.NodeId(OBJECT_NAME, self._ns)
        request.MethodId = ua.NodeId(method, self._ns)
        request.InputArguments = args
        try:
            results = await client.uaclient.call([request])
        except Exception as exc:
            await self.close()
            raise ControllerUnavailable(f"lost the controller at {self.endpoint}: {_why(exc)}") from exc
        result = results[0]
        outputs = result.OutputArguments or []
        text = str(outputs[0].Value) if outputs and outputs[0].Value is not None else ""
        if not text and not result.StatusCode.is_good():
            text = f"{result.StatusCode.name}: {result.StatusCode.doc}"
        return result.StatusCode, text


async def send_command(endpoint: str, name: str | int, actor: str, reason: str = "") -> str:
    """One-shot helper for the CLI: connect, send one command, close; returns the new state name."""
    async with ControllerClient(endpoint) as client:
        return await client.command(name, actor, reason)


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _quiet_disconnect(client: Client) -> None:
    try:
        await client.disconnect()
    except Exception as exc:  # the link may already be gone; closing must not raise
        log.debug("controller_client_disconnect_error", error=_why(exc))
