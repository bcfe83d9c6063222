"""Security of the controller's OPC UA server: its certificate, who may open a session, what each session may do, and
where refusals are recorded (docs/security.md, docs/decisions/0011-*.md).

- Channels: Basic256Sha256 Sign and SignAndEncrypt endpoints only, with the controller's own certificate (created on
  first start in the site's `[security] pki_dir`).
- Sessions: UserName tokens checked against the record's accounts (`UserStore.authenticate`: argon2, lockout, every
  failure in the accounts' audit). Anonymous sessions are refused unless the site allows anonymous read-only ones.
- Requests: `SessionRules` (an asyncua permission ruleset) lets anonymous and `service` sessions browse and read only;
  every request's user and channel mode are kept in a context variable so the method handlers know who calls.
- Refusals: into the running batch's record, else registry REG-ACCESS (hash-chained, verified), and into a short
  rolling list shown on the SecurityEvents tag (the console shows them as alarms).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog
from asyncua import ua
from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset, User, UserRole

log = structlog.get_logger("fillfinish.server.security")

ANONYMOUS = "anonymous"  # a valid record actor (fillfinish.record.names): the refusal is recorded
"""The actor recorded for an anonymous session (not a valid user id, so it can never be mistaken for a person)."""

ACCESS_REGISTRY = "access"
"""Registry REG-ACCESS: refused logins and commands while no batch runs."""

SERVER_CERT_NAME = "controller-server-cert.der"
SERVER_KEY_NAME = "controller-server-key.pem"

_WRITE = ua.NodeId(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary)
_CALL = ua.NodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary)
_ALL_USER_TYPES = frozenset(ua.NodeId(t) for t in USER_TYPES)
READ_ONLY_TYPES = _ALL_USER_TYPES - {_WRITE, _CALL, ua.NodeId(ua.ObjectIds.HistoryUpdateRequest_Encoding_DefaultBinary)}
"""What an anonymous or `service` session may do: browse, read, subscribe; never write or call a method."""

READ_ONLY_ROLES = frozenset({"service", "admin"})
"""Account roles whose sessions are read-only at the protocol level (see also fillfinish/command_roles.py)."""


@dataclass
class SessionUser(User):
    """An authenticated session's user: asyncua's User plus the account's role in the record."""

    account_role: str = ""


@dataclass(frozen=True)
class CallContext:
    """Who sends the request being processed, over which channel mode."""

    user: User
    mode: ua.MessageSecurityMode

    @property
    def actor(self) -> str:
        """The user id for the record (ANONYMOUS for an anonymous session)."""
        return self.user.name if isinstance(self.user, SessionUser) and self.user.name else ANONYMOUS

    @property
    def role(self) -> str:
        """The account's role ('' for an anonymous session)."""
        return self.user.account_role if isinstance(self.user, SessionUser) else ""


CURRENT_CALL: ContextVar[CallContext | None] = ContextVar("fillfinish_opcua_call", default=None)
"""Set by SessionRules for each request; read by the method handlers in the same task."""


class Authenticator(Protocol):
    """What the server needs of the accounts (UserStore implements it)."""

    def authenticate(self, username: str, password: str, *, allow_expired: bool = False, purpose: str = "") -> Any:
        """The account (with .username and .role), or a PeopleError saying why not (recorded by the accounts)."""
        ...


BatchSink = Callable[[str, str, dict[str, Any]], bool]
"""(actor, kind, data) -> True when written into a running batch's record."""


class AccessAudit:
    """Records refused logins and commands (batch record when a batch runs, else REG-ACCESS) and keeps the last few
    security events for the SecurityEvents tag."""

    def __init__(self, store: Any | None, *, batch_sink: BatchSink | None = None, keep: int = 20,
                 now: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.batch_sink = batch_sink
        self.events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._now = now or (lambda: datetime.now(UTC))
        self.changed = 0  # bumped on every event, so the server republishes the tag

    def note(self, event: str, actor: str, detail: str) -> None:
        """Add an event to the rolling list only (e.g. a failed login, which the accounts' audit already holds)."""
        self.events.append({"time": self._now().isoformat(timespec="seconds"), "event": event, "user": actor,
                            "detail": detail})
        self.changed += 1
        log.warning("opcua_security_event", security_event=event, actor=actor, detail=detail)

    def refused(self, actor: str, what: str, why: str, **extra: Any) -> None:
        """Record a refusal with who, what and why (never raises: a refusal stands even if recording fails)."""
        self.note("refused", actor, f"{what}: {why}")
        data = {"what": what, "why": why, "channel": "opcua", **extra}
        from fillfinish.record.names import valid_actor

        if not valid_actor(actor):  # a user id that could lie (newline, spaces): kept as data, escaped when shown
            data["claimed_user"], actor = str(actor)[:200], "unknown"
        try:
            if self.batch_sink is not None and self.batch_sink(actor, "access_refused", data):
                return
            if self.store is not None:
                from fillfinish.record.registry import append_registry

                append_registry(self.store, ACCESS_REGISTRY, "access_refused", data, actor)
        except Exception as exc:  # noqa: BLE001 - the refusal itself already happened
            log.error("opcua_refusal_not_recorded", actor=actor, what=what, error=str(exc))

    def as_json(self) -> str:
        """The rolling list for the SecurityEvents tag (newest last)."""
        return json.dumps(list(self.events), sort_keys=True)


class ControllerUserManager:
    """asyncua user manager: UserName tokens against the record's accounts; anonymous only when the site allows it."""

    def __init__(self, users: Authenticator, audit: AccessAudit, *, allow_anonymous_read: bool) -> None:
        self.users = users
        self.audit = audit
        self.allow_anonymous_read = allow_anonymous_read

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        """The session's user, or None (asyncua answers BadUserAccessDenied). Every refusal is recorded."""
        if username is None:
            if self.allow_anonymous_read:
                return User(role=UserRole.Anonymous)
            self.audit.refused(ANONYMOUS, "open a session", "anonymous sessions are not allowed on this controller")
            return None
        from fillfinish.people.users import AccountLocked, PeopleError

        try:
            account = self.users.authenticate(username, password or "", purpose="opcua session")
        except AccountLocked as exc:
            self.audit.note("lockout", username, str(exc))
            return None
        except PeopleError as exc:  # wrong password, unknown, disabled, expired: in the accounts' audit already
            self.audit.note("login_failed", username, str(exc))
            return None
        return SessionUser(role=UserRole.User, name=account.username, account_role=account.role)


class SessionRules(PermissionRuleset):
    """Per-request permission check (one instance per endpoint mode): remembers who calls, refuses writes and method
    calls of read-only sessions and records the refusal."""

    def __init__(self, mode: ua.MessageSecurityMode, audit: AccessAudit) -> None:
        self.mode = mode
        self.audit = audit

    def check_validity(self, user: User, action_type_id: ua.NodeId, body: Any) -> bool:
        """True when `user` may send a request of this type; the call context is set for the handlers."""
        ctx = CallContext(user, self.mode)
        CURRENT_CALL.set(ctx)
        if action_type_id not in _ALL_USER_TYPES:
            return False  # address-space changes, server registration: nobody over the network
        if action_type_id in READ_ONLY_TYPES:
            return True
        if isinstance(user, SessionUser) and user.account_role not in READ_ONLY_ROLES:
            return True
        what = "write a value" if action_type_id == _WRITE else _describe_call(body)
        who = "an anonymous session" if ctx.actor == ANONYMOUS else f"role {ctx.role}"
        self.audit.refused(ctx.actor, what, f"{who} may browse and read only")
        return False


def _describe_call(body: Any) -> str:
    """'Command Abort' for a method call request (parsed from a copy of the request; the original is untouched)."""
    try:
        from asyncua.common.utils import Buffer
        from asyncua.ua.ua_binary import struct_from_binary

        copy = Buffer(bytes(body)) if not hasattr(body, "copy") else body.copy()
        params = struct_from_binary(ua.CallParameters, copy)
        names = []
        for m in params.MethodsToCall:
            method = str(m.MethodId.Identifier).rsplit(".", 1)[-1]
            first = m.InputArguments[0].Value if m.InputArguments else None
            names.append(f"{method} {first}" if method == "Command" and first is not None else method)
        return "call " + ", ".join(names)
    except Exception:  # noqa: BLE001 - a description only
        return "call a method"


def install_session_rules(server: Any, audit: AccessAudit) -> None:
    """Give every endpoint's security policy its own SessionRules (knowing its channel mode). asyncua passes one
    ruleset to all policies; we set each policy factory's ruleset after the endpoints are built (server.start)."""
    for factory in server._policies:  # noqa: SLF001 - asyncua keeps the factories here (asyncua 1.1 .. 2.x)
        factory.permission_ruleset = SessionRules(factory.mode, audit)


async def ensure_server_certificate(pki_dir: Path, application_uri: str, host: str) -> tuple[Path, Path]:
    """The controller's server certificate (DER) and private key (PEM) in `pki_dir`, created on first start (kept
    while valid; asyncua's generator renews an expired one). Rotation: docs/security.md."""
    import socket

    from asyncua.crypto import cert_gen
    from cryptography.x509.oid import ExtendedKeyUsageOID

    pki_dir = Path(pki_dir)
    pki_dir.mkdir(parents=True, exist_ok=True)
    cert, key = pki_dir / SERVER_CERT_NAME, pki_dir / SERVER_KEY_NAME
    await cert_gen.setup_self_signed_certificate(
        key, cert, application_uri, host if host not in ("0.0.0.0", "") else socket.gethostname(),
        [ExtendedKeyUsageOID.SERVER_AUTH], {"organizationName": "fillfinish"},
    )
    try:
        key.chmod(0o600)  # the private key is for the controller's account only
    except OSError:
        pass
    return cert, key
