"""The controller's own OPC UA server: PackML tags (read-only) and the Command/AcknowledgeAlarm methods.

The HMI, the CLI and a plant MES talk to the controller only through this address space (docs/hmi.md), over
Basic256Sha256 Sign or SignAndEncrypt channels, as a user of the record (docs/security.md): the actor of every command
and acknowledgement is the session's authenticated user, and fillfinish/command_roles.py says who may do what. It
depends on nothing but `fillfinish.control.ControllerView` and an `Authenticator`, so it is tested against test
doubles.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from asyncua import Node, Server, ua

from fillfinish.command_roles import Decision, decide_acknowledge, decide_command
from fillfinish.control import ControllerView, StatusView
from fillfinish.machine.packml import Command, CommandRefused, UnknownCommand, parse_command
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
from fillfinish.server_security import (
    CURRENT_CALL,
    AccessAudit,
    Authenticator,
    CallContext,
    ControllerUserManager,
    ensure_server_certificate,
    install_session_rules,
)

log = structlog.get_logger("fillfinish.server")

# PackML command numbers (OPC 30050 / ISA-TR88.00.02): Reset 1 .. Complete 10.
COMMAND_NUMBERS: dict[str, int] = {c.name: int(c.value) for c in Command}
UNIT_MODE_NAMES: dict[int, str] = {1: "Production", 2: "Maintenance", 3: "Manual", 4: "Media fill (APS)"}

_INITIAL: dict[ua.VariantType, Any] = {
    ua.VariantType.Int32: 0,
    ua.VariantType.String: "",
    ua.VariantType.Double: 0.0,
}


def command_name(value: object) -> str:
    """The canonical PackML command name for a number (1..10) or a name (any case); UnknownCommand (a ValueError)
    lists what is allowed."""
    if not isinstance(value, int | str) or isinstance(value, bool):
        raise UnknownCommand(value)
    return parse_command(value).name


def status_tags(status: StatusView) -> dict[str, Any]:
    """The Status tag values for one snapshot (pure; JSON for the alarm list and the environment)."""
    alarms = [dataclasses.asdict(a) for a in status.alarms]
    return {
        "StateCurrent": int(status.state),
        "StateCurrentName": status.state_name,
        "UnitModeCurrent": int(status.unit_mode),
        "UnitModeCurrentName": UNIT_MODE_NAMES.get(int(status.unit_mode), f"Mode {status.unit_mode}"),
        "BatchId": status.batch_id or "",
        "Product": status.product or "",
        "Phase": status.phase or "",
        "PlannedCount": int(status.planned),
        "ProdProcessedCount": int(status.processed),
        "ProdDefectiveCount": int(status.defective),
        "UvDose_mJ_cm2": float(status.uv_dose_mj_cm2),
        "UvDoseTarget_mJ_cm2": float(getattr(status, "uv_target_mj_cm2", 0.0) or 0.0),
        "StopReason": status.stop_reason,
        "HoldCause": str(getattr(status, "hold_cause", "") or ""),
        "ValidCommands": ",".join(status.valid_commands),
        "Alarms": json.dumps(alarms, sort_keys=True),
        "AlarmCount": len(alarms),
        "UnacknowledgedAlarmCount": sum(1 for a in status.alarms if not a.acknowledged),
        "Environment": json.dumps({k: float(v) for k, v in status.environment.items()}, sort_keys=True),
        "EnvironmentLimits": json.dumps({k: list(v) for k, v in status.environment_limits.items()}, sort_keys=True),
    }


def _text(variant: object) -> str:
    """A method argument as a string ('' for null)."""
    value = variant.Value if isinstance(variant, ua.Variant) else variant
    return "" if value is None else str(value)


def _result(status: int, text: str) -> ua.CallMethodResult:
    """A method result carrying a status code and one String output argument (the text is kept on Bad codes too)."""
    res = ua.CallMethodResult()
    res.StatusCode = ua.StatusCode(status)
    res.OutputArguments = [ua.Variant(text, ua.VariantType.String)]
    return res


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
        self.certificate: Path | None = None
        self.host = host
        self.port = port
        self.update_interval_s = update_interval_s
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._status_nodes: dict[str, Node] = {}
        self._env_nodes: dict[str, Node] = {}
        self._env_object: Node | None = None
        self._last: dict[str, Any] = {}
        self._heartbeat = 0
        self._ns = 0
        self._publish_lock = asyncio.Lock()  # the update task and the method handlers both publish

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
        sec = self.security
        cert, key = await ensure_server_certificate(sec.pki_dir, APPLICATION_URI, self.host)
        self.certificate = cert
        server = Server(user_manager=ControllerUserManager(sec.users, self.audit,
                                                           allow_anonymous_read=sec.allow_anonymous_read))
        await server.init()
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
        self._ns = await server.register_namespace(NAMESPACE_URI)
        await self._build(server)
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
        await self._publish()
        self._task = asyncio.create_task(self._update_loop(), name="fillfinish-server-tags")
        log.info("controller_server_started", endpoint=self.endpoint)

    async def stop(self) -> None:
        """Stop the update task and the server (idempotent); leaves no task behind."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
            log.info("controller_server_stopped", endpoint=self.endpoint)

    async def __aenter__(self) -> ControllerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------- address space

    def _nid(self, name: str) -> ua.NodeId:
        """A string node id in our namespace (stable names an MES can configure)."""
        return ua.NodeId(name, self._ns)

    async def _build(self, server: Server) -> None:
        """Create FillFinish, its Status and EnvironmentValues objects, the tags and the two methods."""
        ns = self._ns
        root = await server.nodes.objects.add_object(self._nid(OBJECT_NAME), ua.QualifiedName(OBJECT_NAME, ns))
        status = await root.add_object(self._nid(STATUS_OBJECT), ua.QualifiedName("Status", ns))
        self._env_object = await root.add_object(
            self._nid(ENVIRONMENT_OBJECT), ua.QualifiedName("EnvironmentValues", ns)
        )
        for name, vtype in STATUS_TAGS.items():
            node = await status.add_variable(
                self._nid(f"{STATUS_OBJECT}.{name}"),
                ua.QualifiedName(name, ns),
                ua.Variant(_INITIAL[vtype], vtype),
                varianttype=vtype,
            )
            self._status_nodes[name] = node  # not set_writable: clients read only
        await root.add_method(
            self._nid(COMMAND_METHOD),
            ua.QualifiedName("Command", ns),
            self._on_command,
            [
                _arg("command", ua.NodeId(ua.ObjectIds.BaseDataType),
                     "PackML command number (Int32: Reset 1 .. Complete 10) or name (String)"),
                _arg("reason", ua.NodeId(ua.ObjectIds.String), "why (recorded in the batch record); may be empty"),
                _arg("signaturePassword", ua.NodeId(ua.ObjectIds.String),
                     "the session user's password again, as an electronic signature, for Abort, Complete and Unhold "
                     "after an alarm (SignAndEncrypt sessions only); empty otherwise"),
            ],
            [_arg("result", ua.NodeId(ua.ObjectIds.String), "new state name, or the refusal text on a Bad status")],
        )
        await root.add_method(
            self._nid(ACK_METHOD),
            ua.QualifiedName("AcknowledgeAlarm", ns),
            self._on_acknowledge,
            [
                _arg("alarmId", ua.NodeId(ua.ObjectIds.Int32), "alarm id (from the Alarms tag)"),
            ],
            [_arg("result", ua.NodeId(ua.ObjectIds.String), "confirmation, or the error text on a Bad status")],
        )

    # ----------------------------------------------------------------- tag updates

    async def _update_loop(self) -> None:
        """Refresh the tags from view.status() every update_interval_s until cancelled."""
        while True:
            await asyncio.sleep(self.update_interval_s)
            try:
                await self._publish()
            except Exception:  # keep serving; the Heartbeat tag stops and the HMI shows "not updating"
                log.exception("controller_tag_update_failed")

    async def _publish(self) -> None:
        """Write every changed tag from one snapshot; a failing view is shown in StatusError, never kills the task."""
        async with self._publish_lock:  # a slower, older snapshot must not overwrite a newer one
            await self._publish_snapshot()

    async def _publish_snapshot(self) -> None:
        """One snapshot -> tags (call with the publish lock held)."""
        self._heartbeat = (self._heartbeat + 1) % 2_000_000_000
        values: dict[str, Any] = {"Heartbeat": self._heartbeat, "SecurityEvents": self.audit.as_json()}
        environment: dict[str, float] = {}
        try:
            snapshot = self.view.status()
            values.update(status_tags(snapshot))
            environment = {k: float(v) for k, v in snapshot.environment.items()}
            values["StatusError"] = ""
        except Exception as exc:  # the controller's bug must not take the HMI's view away silently
            log.exception("controller_status_failed")
            values["StatusError"] = f"{type(exc).__name__}: {exc}"
        for name, value in values.items():
            await self._write(name, value)
        for key, value in environment.items():
            await self._write_env(key, value)

    async def _write(self, name: str, value: Any) -> None:
        """Write one Status tag if its value changed (server-side write: clients cannot)."""
        server = self._server
        if server is None or self._last.get(name, object()) == value:
            return
        vtype = STATUS_TAGS[name]
        await server.write_attribute_value(
            self._status_nodes[name].nodeid, ua.DataValue(ua.Variant(value, vtype))
        )
        self._last[name] = value

    async def _write_env(self, key: str, value: float) -> None:
        """Write one EnvironmentValues variable, creating it the first time the key appears."""
        server = self._server
        if server is None or self._env_object is None:
            return
        node = self._env_nodes.get(key)
        if node is None:
            node = await self._env_object.add_variable(
                self._nid(f"{ENVIRONMENT_OBJECT}.{key}"),
                ua.QualifiedName(key, self._ns),
                ua.Variant(value, ua.VariantType.Double),
                varianttype=ua.VariantType.Double,
            )
            self._env_nodes[key] = node
            self._last[f"env:{key}"] = value
            return
        if self._last.get(f"env:{key}") != value:
            await server.write_attribute_value(node.nodeid, ua.DataValue(ua.Variant(value, ua.VariantType.Double)))
            self._last[f"env:{key}"] = value

    # ----------------------------------------------------------------- methods

    async def _on_command(self, parent: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        """Command(command[, reason[, signaturePassword]]) as the session's user: Good + new state, or Bad + why."""
        ctx = CURRENT_CALL.get()
        if ctx is None or not ctx.role:
            return _result(ua.StatusCodes.BadUserAccessDenied, "commands need an authenticated session")
        actor = ctx.actor
        if not args:
            return _result(ua.StatusCodes.BadArgumentsMissing, "Command needs (command[, reason[, signaturePassword]])")
        if len(args) > 3:
            return _result(ua.StatusCodes.BadTooManyArguments, "Command takes (command, reason, signaturePassword)")
        raw = args[0].Value if isinstance(args[0], ua.Variant) else args[0]
        reason = _text(args[1]) if len(args) > 1 else ""
        password = _text(args[2]) if len(args) > 2 else ""
        try:
            name = command_name(raw)
        except ValueError as exc:
            return await self._command_done(str(raw), actor, reason, ua.StatusCodes.BadInvalidArgument, str(exc))
        snapshot = self._snapshot()
        held_by_alarm = bool(snapshot is not None and snapshot.state_name in ("Held", "Holding")
                             and getattr(snapshot, "hold_cause", ""))
        decision = decide_command(ctx.role, name, held_by_alarm=held_by_alarm)
        refused = self._check(ctx, decision, password, f"Command {name}")
        if refused is not None:
            status, why = refused
            self.audit.refused(actor, f"Command {name}", why, role=ctx.role, reason=reason)
            return await self._command_done(name, actor, reason, status, why)
        extra: dict[str, Any] = {}
        if decision.signature_meaning:
            extra["signature"] = {"meaning": decision.signature_meaning, "name": actor, "authenticated": True}
        try:
            new_state = await self.view.command(name, actor, reason, **extra)
        except CommandRefused as exc:
            return await self._command_done(name, actor, reason, ua.StatusCodes.BadInvalidState, str(exc))
        except UnknownCommand as exc:
            return await self._command_done(name, actor, reason, ua.StatusCodes.BadInvalidArgument, str(exc))
        except Exception as exc:
            log.exception("controller_command_failed", command=name, actor=actor)
            return await self._command_done(
                name, actor, reason, ua.StatusCodes.BadInternalError, f"controller error: {type(exc).__name__}: {exc}"
            )
        return await self._command_done(name, actor, reason, ua.StatusCodes.Good, str(new_state))

    def _snapshot(self) -> StatusView | None:
        """The controller's current status, or None when it cannot give one."""
        try:
            return self.view.status()
        except Exception:  # noqa: BLE001 - the decision then treats the machine as not held by an alarm
            return None

    def _check(self, ctx: CallContext, decision: Decision, password: str, what: str) -> tuple[int, str] | None:
        """None when the role table allows it and any signature it needs is given and valid; else (status, why)."""
        if not decision.allowed:
            return ua.StatusCodes.BadUserAccessDenied, decision.why
        if decision.signature_meaning is None:
            return None
        if not password:
            return (ua.StatusCodes.BadUserAccessDenied,
                    f"{what} needs your electronic signature ({decision.signature_meaning}): enter your password again")
        if ctx.mode != ua.MessageSecurityMode.SignAndEncrypt:
            return (ua.StatusCodes.BadSecurityModeInsufficient,
                    f"{what}: an electronic signature needs a SignAndEncrypt session (the password would cross the "
                    "network in clear on a Sign-only channel)")
        from fillfinish.people.users import PeopleError

        try:
            self.security.users.authenticate(ctx.actor, password, purpose=f"sign: {decision.signature_meaning}")
        except PeopleError as exc:
            self.audit.note("signature_failed", ctx.actor, str(exc))
            return ua.StatusCodes.BadUserAccessDenied, f"{what}: electronic signature refused: {exc}"
        return None

    async def _command_done(
        self, command: str, actor: str, reason: str, status: int, text: str
    ) -> ua.CallMethodResult:
        """Publish LastCommandResult, log, and build the method result."""
        accepted = status == ua.StatusCodes.Good
        record = {
            "command": command,
            "actor": actor,
            "reason": reason,
            "accepted": accepted,
            "status": ua.StatusCode(status).name,
            "result": text,
            "time": datetime.now(UTC).isoformat(),
        }
        await self._write("LastCommandResult", json.dumps(record, sort_keys=True))
        log.info("controller_command", **record)
        await self._publish()  # tags agree with the answer at once, not at the next tick
        return _result(status, text)

    async def _on_acknowledge(self, parent: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
        """AcknowledgeAlarm(alarmId) as the session's user: Good, or Bad + why."""
        ctx = CURRENT_CALL.get()
        if ctx is None or not ctx.role:
            return _result(ua.StatusCodes.BadUserAccessDenied, "acknowledging needs an authenticated session")
        actor = ctx.actor
        if len(args) != 1:
            return _result(ua.StatusCodes.BadArgumentsMissing if not args else ua.StatusCodes.BadTooManyArguments,
                           "AcknowledgeAlarm takes (alarmId)")
        raw = args[0].Value if isinstance(args[0], ua.Variant) else args[0]
        if isinstance(raw, bool) or not isinstance(raw, int):
            try:
                raw = int(str(raw).strip())
            except ValueError:
                return _result(ua.StatusCodes.BadInvalidArgument, f"alarmId must be an integer, got {raw!r}")
        snapshot = self._snapshot()
        severity = next((a.severity for a in (snapshot.alarms if snapshot else ()) if a.alarm_id == raw), None)
        if severity is not None:
            decision = decide_acknowledge(ctx.role, severity)
            if not decision.allowed:
                self.audit.refused(actor, f"acknowledge alarm {raw}", decision.why, role=ctx.role)
                return _result(ua.StatusCodes.BadUserAccessDenied, decision.why)
        try:
            await self.view.acknowledge(int(raw), actor)
        except (KeyError, ValueError, LookupError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return _result(ua.StatusCodes.BadInvalidArgument, f"cannot acknowledge alarm {raw}: {text}")
        except Exception as exc:
            log.exception("controller_acknowledge_failed", alarm_id=raw, actor=actor)
            return _result(ua.StatusCodes.BadInternalError, f"controller error: {type(exc).__name__}: {exc}")
        log.info("controller_alarm_acknowledged", alarm_id=raw, actor=actor)
        await self._publish()
        return _result(ua.StatusCodes.Good, f"alarm {raw} acknowledged by {actor}")


def _arg(name: str, datatype: ua.NodeId, description: str) -> ua.Argument:
    """A method argument description (shown by generic OPC UA clients)."""
    arg = ua.Argument()
    arg.Name = name
    arg.DataType = datatype
    arg.ValueRank = -1
    arg.Description = ua.LocalizedText(description)
    return arg
