"""Client of the controller's OPC UA server (fillfinish/server.py): read the PackML tags, send commands, acknowledge.

Used by the operator console and by the CLI (`fillfinish command ...`): a Basic256Sha256 SignAndEncrypt session as a
user of the record (user id + password), with the client's own application certificate (created on first use in a
folder of the person's account). Every failure is one of the typed errors below, so callers can show a clear message
instead of a traceback. It knows the address space only through fillfinish/server_nodes.py.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import structlog
from asyncua import Client, Node, ua
from asyncua.crypto import cert_gen, security_policies

from fillfinish.server_nodes import ACK_METHOD, COMMAND_METHOD, NAMESPACE_URI, OBJECT_NAME, STATUS_OBJECT, STATUS_TAGS

CLIENT_APPLICATION_URI = "urn:fillfinish:console"
CLIENT_PKI_ENV = "FILLFINISH_CLIENT_PKI"
MODES = {"SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt, "Sign": ua.MessageSecurityMode.Sign}

log = structlog.get_logger("fillfinish.hmi.client")


class ClientError(Exception):
    """Base of the controller client's errors."""


class ControllerUnavailable(ClientError):
    """Not connected, the connection was lost, or the endpoint does not serve the fillfinish controller."""


class LoginRefused(ClientError):
    """The controller refused the user id and password (wrong, unknown, locked, disabled, expired or must be changed:
    the controller does not say which, and records every refusal)."""


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
    out["SecurityEvents"] = _json(raw.get("SecurityEvents"), [])
    commands = raw.get("ValidCommands") or ""
    out["ValidCommands"] = [c for c in str(commands).split(",") if c]
    return out


def _json(text: object, default: Any) -> Any:
    """A JSON tag decoded, or `default` when it is empty or not JSON (an older or broken server)."""
    if not text:
        return default
    try:
        return json.loads(str(text))
    except ValueError:
        return default


def default_client_pki() -> Path:
    """Where the console keeps its application certificate: $FILLFINISH_CLIENT_PKI, else ~/.local/share/fillfinish."""
    env = os.environ.get(CLIENT_PKI_ENV)
    return Path(env) if env else Path.home() / ".local" / "share" / "fillfinish" / "client-pki"


async def ensure_client_certificate(pki_dir: Path) -> tuple[Path, Path]:
    """The console's application certificate (DER) and key (PEM), created on first use (kept while valid)."""
    pki_dir = Path(pki_dir)
    pki_dir.mkdir(parents=True, exist_ok=True)
    cert, key = pki_dir / "console-cert.der", pki_dir / "console-key.pem"
    from cryptography.x509.oid import ExtendedKeyUsageOID

    await cert_gen.setup_self_signed_certificate(key, cert, CLIENT_APPLICATION_URI, socket.gethostname(),
                                                 [ExtendedKeyUsageOID.CLIENT_AUTH], {"organizationName": "fillfinish"})
    try:
        key.chmod(0o600)
    except OSError:
        pass
    return cert, key


class ControllerClient:
    """One OPC UA session to the controller server as `user`; async connect/close, status(), command(),
    acknowledge()."""

    def __init__(self, endpoint: str, *, user: str, password: str, pki_dir: Path | None = None,
                 mode: str = "SignAndEncrypt", server_certificate: Path | None = None, timeout_s: float = 4.0,
                 link_check_s: float = 1.0) -> None:
        """A session not yet open. `timeout_s`: a request's answer time; `link_check_s`: real seconds between
        asyncua's health probes of the session, each answered within it (asyncua's default, 1 s)."""
        if mode not in MODES:
            raise ValueError(f"security mode {mode!r}; allowed: {', '.join(MODES)}")
        self.endpoint = endpoint
        self.user = user
        self._password = password
        self.pki_dir = Path(pki_dir) if pki_dir is not None else default_client_pki()
        self.mode = mode
        self.server_certificate = server_certificate
        self.timeout_s = timeout_s
        self.link_check_s = link_check_s
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
        client = Client(self.endpoint, timeout=self.timeout_s, watchdog_intervall=self.link_check_s)
        client.session_timeout = 600_000
        client.application_uri = CLIENT_APPLICATION_URI
        try:
            cert, key = await ensure_client_certificate(self.pki_dir)
            await client.set_security(
                security_policies.SecurityPolicyBasic256Sha256, certificate=str(cert), private_key=str(key),
                server_certificate=str(self.server_certificate) if self.server_certificate else None,
                mode=MODES[self.mode],
            )
            client.set_user(self.user)
            client.set_password(self._password)
            await client.connect()
        except ua.UaStatusCodeError as exc:
            await _quiet_disconnect(client)
            if exc.code in (ua.StatusCodes.BadUserAccessDenied, ua.StatusCodes.BadIdentityTokenRejected,
                            ua.StatusCodes.BadIdentityTokenInvalid):
                raise LoginRefused(f"login refused for {self.user!r} at {self.endpoint}: wrong user id or password, "
                                   "or the account is locked, disabled, expired or must change its password "
                                   "(`fillfinish user passwd`)") from exc
            raise ControllerUnavailable(f"cannot connect to the controller at {self.endpoint}: {_why(exc)}") from exc
        except Exception as exc:
            await _quiet_disconnect(client)
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
        """Connect for an `async with` block."""
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close the session at the end of the block, also on an error."""
        await self.close()

    def _require(self) -> Client:
        """The open asyncua client; ControllerUnavailable when not connected."""
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

    async def command(self, name: str | int, reason: str = "", signature_password: str = "") -> str:
        """Send a PackML command (name or number) as the session's user; `signature_password` is the password again
        as an e-signature (Abort, Complete, Unhold after an alarm). Returns the new state name, raises CommandRejected
        with the text."""
        first = ua.Variant(name, ua.VariantType.Int32) if isinstance(name, int) else ua.Variant(str(name))
        args = [first, ua.Variant(reason, ua.VariantType.String)]
        if signature_password:
            args.append(ua.Variant(signature_password, ua.VariantType.String))
        status, text = await self._call(COMMAND_METHOD, args)
        if not status.is_good():
            raise CommandRejected(text, status=status.name, command=str(name))
        return text

    async def acknowledge(self, alarm_id: int) -> str:
        """Acknowledge an alarm as the session's user; returns the confirmation, raises AcknowledgeRejected."""
        status, text = await self._call(ACK_METHOD, [ua.Variant(int(alarm_id), ua.VariantType.Int32)])
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
        except ua.UaStatusCodeError as exc:
            if exc.code != ua.StatusCodes.BadUserAccessDenied:
                await self.close()
                raise ControllerUnavailable(f"lost the controller at {self.endpoint}: {_why(exc)}") from exc
            # refused for the whole request (a read-only session); the session itself stays open
            return ua.StatusCode(exc.code), f"BadUserAccessDenied: {self.user} may browse and read only here"
        except Exception as exc:
            await self.close()
            raise ControllerUnavailable(f"lost the controller at {self.endpoint}: {_why(exc)}") from exc
        result = results[0]
        outputs = result.OutputArguments or []
        text = str(outputs[0].Value) if outputs and outputs[0].Value is not None else ""
        if not text and not result.StatusCode.is_good():
            text = f"{result.StatusCode.name}: {result.StatusCode.doc}"
        return result.StatusCode, text


async def send_command(endpoint: str, name: str | int, *, user: str, password: str, reason: str = "",
                       sign: bool = False, pki_dir: Path | None = None) -> str:
    """One-shot helper for the CLI: log in, send one command (signed with the same password when `sign`), close;
    returns the new state name."""
    async with ControllerClient(endpoint, user=user, password=password, pki_dir=pki_dir) as client:
        return await client.command(name, reason, password if sign else "")


def _why(exc: BaseException) -> str:
    """An exception as one line: its type and its text."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _quiet_disconnect(client: Client) -> None:
    """Disconnect, logging instead of raising when the link is already gone."""
    try:
        await client.disconnect()
    except Exception as exc:  # the link may already be gone; closing must not raise
        log.debug("controller_client_disconnect_error", error=_why(exc))
