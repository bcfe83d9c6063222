"""Which role may send which PackML command or acknowledge which alarm, and which need an electronic signature.

One table, documented in docs/security.md, checked by the controller's OPC UA server for every method call (21 CFR
11.10(g) authority checks; IEC 62443-3-3 SR 2.1). The actor is always the authenticated session's user.
"""

from __future__ import annotations

from dataclasses import dataclass

OPERATOR_COMMANDS = frozenset({"Reset", "Start", "Stop", "Hold", "Unhold", "Suspend", "Unsuspend"})
SUPERVISOR_COMMANDS = OPERATOR_COMMANDS | {"Abort", "Clear", "Complete"}

COMMAND_ROLES: dict[str, frozenset[str]] = {
    "operator": OPERATOR_COMMANDS,  # Unhold only after a person's own Hold (not after an alarm), see decide()
    "supervisor": SUPERVISOR_COMMANDS,
    "qa": frozenset({"Hold"}),  # QA may stop the line for a quality concern, never run it
    "admin": frozenset(),  # administers accounts; runs nothing (segregation of duties)
    "service": frozenset(),  # MES / historian: browse and read only
}
"""Role -> the PackML commands it may send."""

ACK_ROLES: dict[str, frozenset[str]] = {
    "alert": frozenset({"operator", "supervisor"}),
    "action": frozenset({"supervisor"}),
    "interlock": frozenset({"supervisor"}),
    "fault": frozenset({"supervisor"}),
}
"""Alarm severity -> roles that may acknowledge it."""

SIGNATURE_MEANINGS: dict[str, str] = {
    "Abort": "approved abort of the batch",
    "Complete": "approved early completion of the batch",
    "Unhold": "approved resumption after an alarm",
}
"""Commands that the record needs an electronic signature for (the password entered again), with its meaning.
Unhold needs one only after an alarm or system hold."""


@dataclass(frozen=True)
class Decision:
    """May `role` do it; if not, why (one line); if yes, the signature meaning when a signature is needed."""

    allowed: bool
    why: str = ""
    signature_meaning: str | None = None


def decide_command(role: str, command: str, *, held_by_alarm: bool) -> Decision:
    """The role table for one PackML command (canonical name). `held_by_alarm`: the machine is Held (or Holding)
    because of an alarm or a system hold, not a person's Hold."""
    allowed = COMMAND_ROLES.get(role, frozenset())
    if command not in allowed:
        who = sorted(r for r, cmds in COMMAND_ROLES.items() if command in cmds)
        return Decision(False, f"role {role} may not send {command}; allowed: {', '.join(who) or 'nobody'}")
    if command == "Unhold" and held_by_alarm:
        if role != "supervisor":
            return Decision(False, f"Unhold after an alarm needs a supervisor (role {role} may Unhold only after a "
                                   "person's Hold)")
        return Decision(True, signature_meaning=SIGNATURE_MEANINGS["Unhold"])
    if command in ("Abort", "Complete"):
        return Decision(True, signature_meaning=SIGNATURE_MEANINGS[command])
    return Decision(True)


def decide_acknowledge(role: str, severity: str) -> Decision:
    """The role table for acknowledging an alarm of `severity` (alert | action | interlock | fault)."""
    roles = ACK_ROLES.get(severity, ACK_ROLES["interlock"])
    if role in roles:
        return Decision(True)
    return Decision(False, f"role {role} may not acknowledge a {severity} alarm; allowed: {', '.join(sorted(roles))}")


def role_table_markdown() -> str:
    """The role table as Markdown (docs/security.md is checked against it)."""
    commands = ["Reset", "Start", "Stop", "Hold", "Unhold", "Suspend", "Unsuspend", "Abort", "Clear", "Complete"]
    roles = list(COMMAND_ROLES)
    lines = ["| command | " + " | ".join(roles) + " | e-signature |", "|---" * (len(roles) + 2) + "|"]
    for c in commands:
        cells = []
        for r in roles:
            if c not in COMMAND_ROLES[r]:
                cells.append("-")
            elif c == "Unhold" and r != "supervisor":
                cells.append("after a person's Hold")
            else:
                cells.append("yes")
        sign = {"Unhold": "after an alarm", "Abort": "yes", "Complete": "yes"}.get(c, "-")
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {sign} |")
    for severity, who in ACK_ROLES.items():
        cells = ["yes" if r in who else "-" for r in roles]
        lines.append(f"| acknowledge {severity} alarm | " + " | ".join(cells) + " | - |")
    lines.append("| browse, read tags | " + " | ".join("yes" for _ in roles) + " | - |")
    return "\n".join(lines)
