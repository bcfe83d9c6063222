"""The controller's own OPC UA server: PackML tags (read-only) and the Command/AcknowledgeAlarm methods.

The HMI, the CLI and a plant MES talk to the controller only through this address space (docs/hmi.md), over
Basic256Sha256 Sign or SignAndEncrypt channels, as a user of the record (docs/security.md): the actor of every command
and acknowledgement is the session's authenticated user, and fillfinish/command_roles.py says who may do what. It
depends on nothing but `fillfinish.control.ControllerView` and an `Authenticator`, so it is tested against test
doubles. This module starts and stops the server; its parts are server_address_space.py (the nodes),
server_publisher.py (the tags), server_methods.py (the two methods), server_tags.py (tag values) and
server_security.py (sessions, certificates, refusals).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from asyncua import Server, ua

from fillfinish.control import ControllerView
from fillfinish.opcua_cache import standard_space_shelf
from fillfinish.server_address_space import build_address_space
from fillfinish.server_methods import MethodHandlers
from fillfinish.server_nodes import (  # noqa: F401 - re-exported: the address space's names
    ACK_METHOD,
    APPLICATION_URI,
    COMMAND_METHOD,
    ENDPOINT_PATH,
    ENVIRONMENT_OBJECT,
    NAMESPACE_URI,
    OBJECT_NAME,
    STATUS_OBJECT,
    STATUS_TAGS,
)
from fillfinish.server_publisher import TagPublisher
from fillfinish.server_security import (
    AccessAudit,
    Authenticator,
    ControllerUserManager,
    ensure_server_certificate,
    install_session_rules,
)
from fillfinish.server_tags import COMMAND_NUMBERS, UNIT_MODE_NAMES, command_name, status_tags  # noqa: F401 - re-exported

log = structlog.get_logger("fillfinish.server")


@dataclass(frozen=True)
class ServerSecurity:
    """How the server authenticates and where it keeps its certificate and records refusals."""

    pki_dir: Path  # the controller's certificate and key (created on first start)
    users: Authenticator  # the record's accounts (UserStore)
    store: Any | None = None  # the RecordStore for REG-ACCESS (refusals while no batch runs)
    allow_anonymous_read: bool = False  # anonymous sessions may browse and read (never write or call)


class ControllerServer:
    """OPC UA server exposing a ControllerView: PackML tags refreshed by a task, and command/acknowledge methods,
    for authenticated sessions over signed (and encrypted) channels only."""

    def __init__(
        self,
        view: ControllerView,
        *,
        security: ServerSecurity,
        host: str = "127.0.0.1",
        port: int = 0,
        update_interval_s: float = 0.2,
    ) -> None:
        if not update_interval_s > 0:
            raise ValueError(f"update_interval_s must be > 0, got {update_interval_s!r}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535 (0 = any free port), got {port!r}")
        self.view = view
        self.security = security
        self.audit = AccessAudit(security.store, batch_sink=self._into_batch)
        self.publisher = TagPublisher(view, self.audit)
        self.methods = MethodHandlers(view, security.users, self.audit, self.publisher)
        self.certificate: Path | None = None
        self.host = host
        self.port = port
        self.update_interval_s = update_interval_s
        self._server: Server | None = None

    def _into_batch(self, actor: str, kind: str, data: dict[str, Any]) -> bool:
        """A refusal into the running batch's record (the view's record_refusal, when it has one)."""
        sink = getattr(self.view, "record_refusal", None)
        return bool(sink(actor, kind, data)) if sink is not None else False

    @property
    def endpoint(self) -> str:
        """The endpoint URL clients connect to (the real port once started with port=0)."""
        return f"opc.tcp://{self.host}:{self.port}{ENDPOINT_PATH}"

    async def start(self) -> None:
        """Build the address space, listen, and start the tag update task."""
        if self._server is not None:
            raise RuntimeError("ControllerServer already started")
        server = await self._new_server()
        ns = await server.register_namespace(NAMESPACE_URI)
        space = await build_address_space(server, ns, self.methods.on_command, self.methods.on_acknowledge)
        await server.start()
        install_session_rules(server, self.audit)
        # accept the anonymous token at activation even when not advertised, so that the refusal is recorded by the
        # user manager (asyncua would otherwise refuse it before any hook runs)
        server.iserver.supported_tokens = (ua.UserNameIdentityToken, ua.AnonymousIdentityToken)
        self._server = server
        if server.bserver is not None and self.port == 0:
            self.port = int(server.bserver.port)
            for edp in server.iserver.endpoints:  # advertise the port actually bound
                edp.EndpointUrl = self.endpoint
                edp.Server.DiscoveryUrls = [self.endpoint]
        self.publisher.attach(server, space)
        await self.publisher.publish()
        self.publisher.start(self.update_interval_s)
        log.info("controller_server_started", endpoint=self.endpoint)

    async def _new_server(self) -> Server:
        """An initialised, not yet listening asyncua Server: our certificate, Basic256Sha256 only, user tokens."""
        sec = self.security
        cert, key = await ensure_server_certificate(sec.pki_dir, APPLICATION_URI, self.host)
        self.certificate = cert
        server = Server(user_manager=ControllerUserManager(sec.users, self.audit,
                                                           allow_anonymous_read=sec.allow_anonymous_read))
        await server.init(await standard_space_shelf())  # None: built from asyncua's code, as before
        server.set_server_name("fillfinish controller")
        await server.set_application_uri(APPLICATION_URI)
        server.set_endpoint(self.endpoint)
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                                    ua.SecurityPolicyType.Basic256Sha256_Sign])
        tokens: list[type] = [ua.UserNameIdentityToken]
        if sec.allow_anonymous_read:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)  # what the endpoints advertise
        server.allow_remote_admin(False)  # no network user may bypass the read-only tags
        return server

    async def stop(self) -> None:
        """Stop the update task and the server (idempotent); leaves no task behind."""
        await self.publisher.stop()
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
            log.info("controller_server_stopped", endpoint=self.endpoint)

    async def __aenter__(self) -> ControllerServer:
        """Start the server for an `async with` block."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the server at the end of the block, also on an error."""
        await self.stop()
