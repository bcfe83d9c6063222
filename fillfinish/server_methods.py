"""The controller server's Command and AcknowledgeAlarm method handlers: the session's authenticated user is the
actor, fillfinish/command_roles.py decides who may, an electronic signature is checked where the record needs one,
and the view's answer (or the refusal and why) comes back as a status code and one String result."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog
from asyncua import ua

from fillfinish.command_roles import Decision, decide_acknowledge, decide_command
from fillfinish.control import ControllerView, StatusView
from fillfinish.machine.packml import CommandRefused, UnknownCommand
from fillfinish.server_publisher import TagPublisher
from fillfinish.server_security import CURRENT_CALL, AccessAudit, Authenticator, CallContext
from fillfinish.server_tags import command_name

log = structlog.get_logger("fillfinish.server")


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


class MethodHandlers:
    """Command(command[, reason[, signaturePassword]]) and AcknowledgeAlarm(alarmId) for authenticated sessions."""

    def __init__(self, view: ControllerView, users: Authenticator, audit: AccessAudit,
                 publisher: TagPublisher) -> None:
        self.view = view
        self.users = users
        self.audit = audit
        self.publisher = publisher

    async def on_command(self, parent: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
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
        status, text = await self._send(name, actor, reason, decision)
        return await self._command_done(name, actor, reason, status, text)

    async def _send(self, name: str, actor: str, reason: str, decision: Decision) -> tuple[int, str]:
        """The allowed command to the view: (Good, new state) or (Bad status, why it was refused or failed)."""
        extra: dict[str, Any] = {}
        if decision.signature_meaning:
            extra["signature"] = {"meaning": decision.signature_meaning, "name": actor, "authenticated": True}
        try:
            new_state = await self.view.command(name, actor, reason, **extra)
        except CommandRefused as exc:
            return ua.StatusCodes.BadInvalidState, str(exc)
        except UnknownCommand as exc:
            return ua.StatusCodes.BadInvalidArgument, str(exc)
        except Exception as exc:
            log.exception("controller_command_failed", command=name, actor=actor)
            return ua.StatusCodes.BadInternalError, f"controller error: {type(exc).__name__}: {exc}"
        return ua.StatusCodes.Good, str(new_state)

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
            self.users.authenticate(ctx.actor, password, purpose=f"sign: {decision.signature_meaning}")
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
        await self.publisher.write("LastCommandResult", json.dumps(record, sort_keys=True))
        log.info("controller_command", **record)
        await self.publisher.publish()  # tags agree with the answer at once, not at the next tick
        return _result(status, text)

    async def on_acknowledge(self, parent: ua.NodeId, *args: ua.Variant) -> ua.CallMethodResult:
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
        return await self._acknowledge(int(raw), actor)

    async def _acknowledge(self, alarm_id: int, actor: str) -> ua.CallMethodResult:
        """The allowed acknowledgement to the view, then the tags at once; Bad + why when the view refuses."""
        try:
            await self.view.acknowledge(alarm_id, actor)
        except (KeyError, ValueError, LookupError) as exc:
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return _result(ua.StatusCodes.BadInvalidArgument, f"cannot acknowledge alarm {alarm_id}: {text}")
        except Exception as exc:
            log.exception("controller_acknowledge_failed", alarm_id=alarm_id, actor=actor)
            return _result(ua.StatusCodes.BadInternalError, f"controller error: {type(exc).__name__}: {exc}")
        log.info("controller_alarm_acknowledged", alarm_id=alarm_id, actor=actor)
        await self.publisher.publish()
        return _result(ua.StatusCodes.Good, f"alarm {alarm_id} acknowledged by {actor}")
