"""The operator console's commands: a PackML command or an alarm acknowledgement is sent as the logged-in user with
the typed reason, an electronic signature is asked for first where the record needs one, and the controller's answer
(accepted, or refused and why) is shown. The controller decides and records; the console only asks and shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.widgets import Button, Input

from fillfinish.command_roles import SIGNATURE_MEANINGS
from fillfinish.hmi.client import AcknowledgeRejected, CommandRejected, ControllerUnavailable
from fillfinish.hmi.console_base import ConsoleBase, until_closed
from fillfinish.hmi.dialogs import SignatureScreen


def signature_meaning(name: str, status: Mapping[str, Any] | None) -> str | None:
    """The signature meaning when the record needs one for command `name` now (Abort, Complete, Unhold after an
    alarm), else None; the controller checks it again."""
    if name in ("Abort", "Complete"):
        return SIGNATURE_MEANINGS[name]
    if name == "Unhold" and status and status.get("HoldCause"):
        return SIGNATURE_MEANINGS["Unhold"]
    return None


class ConsoleCommands(ConsoleBase):
    """Command buttons and keys, the e-signature, alarm acknowledgement, and their outcomes on the screen."""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Command buttons send their PackML command; Ack acknowledges the selected alarm."""
        button_id = event.button.id or ""
        if button_id.startswith("cmd-"):
            self.action_command(button_id.removeprefix("cmd-"))
        elif button_id == "ack":
            self.action_acknowledge()

    def needs_signature(self, name: str) -> str | None:
        """The signature meaning when the record needs one for `name` now (Abort, Complete, Unhold after an alarm)."""
        return signature_meaning(name, self.status)

    def action_command(self, name: str) -> None:
        """Send a PackML command in the background; ask for the e-signature first where the record needs one."""
        if self.client is None or self.locked:
            self.notify("log in (or unlock) first", title=name, severity="warning", markup=False)
            return
        meaning = self.needs_signature(name)
        if meaning is None:
            self.run_worker(self.send_command(name), group="commands", exit_on_error=False)
            return
        reason = self._main("#reason", Input).value.strip()

        def signed(password: str | None) -> None:
            """Send once signed; a cancelled signature sends nothing and says so."""
            if password is None:
                self._last_command(f"{name} not sent: signature cancelled", error=True)
                return
            self.run_worker(self.send_command(name, password), group="commands", exit_on_error=False)

        self.push_screen(SignatureScreen(self.user, name, meaning, reason), signed)

    def action_acknowledge(self) -> None:
        """Acknowledge the alarm under the cursor."""
        if self.client is None or self.locked:
            self.notify("log in (or unlock) first", title="Acknowledge", severity="warning", markup=False)
            return
        alarm_id = self.selected_alarm_id()
        if alarm_id is None:
            self.notify("No alarm selected.", title="Acknowledge", severity="warning", markup=False)
            return
        self.run_worker(self.acknowledge(alarm_id), group="commands", exit_on_error=False)

    def action_leave_reason(self) -> None:
        """Move focus off the reason field so the command keys work again."""
        self._main("#buttons Button", Button).focus()

    @until_closed
    async def send_command(self, name: str, signature_password: str = "") -> None:
        """Send one command as the logged-in user with the typed reason; show the outcome (refusals with why)."""
        if self.client is None:
            return
        reason_input = self._main("#reason", Input)
        reason = reason_input.value.strip()
        try:
            new_state = await self.client.command(name, reason, signature_password)
        except CommandRejected as exc:
            self._last_command(f"{name} REFUSED: {exc.text}", error=True)
            self.notify(exc.text, title=f"{name} refused", severity="error", timeout=15, markup=False)
            return
        except ControllerUnavailable as exc:
            self._last_command(f"{name} NOT SENT: {exc}", error=True)
            self.notify(f"{name} not sent: {exc}", title="No connection", severity="error", timeout=15,
                        markup=False)
            self._show_lost(str(exc))
            return
        reason_input.value = ""
        signed = " (signed)" if signature_password else ""
        self._last_command(f"{name} accepted{signed} -> {new_state}", error=False)
        self.notify(f"{name} accepted: now {new_state}", title=name, markup=False)
        await self.refresh_status()

    @until_closed
    async def acknowledge(self, alarm_id: int) -> None:
        """Acknowledge one alarm as the logged-in user; show the outcome."""
        if self.client is None:
            return
        try:
            text = await self.client.acknowledge(alarm_id)
        except AcknowledgeRejected as exc:
            self._last_command(f"acknowledge {alarm_id} REFUSED: {exc.text}", error=True)
            self.notify(exc.text, title="Acknowledge refused", severity="error", timeout=15, markup=False)
            return
        except ControllerUnavailable as exc:
            self.notify(f"not sent: {exc}", title="No connection", severity="error", timeout=15, markup=False)
            self._show_lost(str(exc))
            return
        self._last_command(text, error=False)
        self.notify(text, title="Alarm acknowledged", markup=False)
        await self.refresh_status()
