"""Logging in to the operator console and locking it: a person logs in with user id and password (the controller
authenticates the session), the console locks after lock_after_s without input, and only the same person's password
unlocks it (or the person logs out and another logs in; docs/security.md)."""

from __future__ import annotations

from textual import events

from fillfinish.hmi.client import ClientError, LoginRefused
from fillfinish.hmi.console_base import ConsoleBase
from fillfinish.hmi.dialogs import LoginScreen


class ConsoleLogin(ConsoleBase):
    """Login, inactivity lock, unlock and logout of the operator console."""

    async def on_event(self, event: events.Event) -> None:
        """Any key press or click is activity (the inactivity lock starts again)."""
        if isinstance(event, (events.Key, events.MouseDown)):
            self._last_input = self._now()
        await super().on_event(event)

    def show_login(self, error: str = "") -> None:
        """Ask for user id and password; the controller authenticates them by opening the session."""
        screen = LoginScreen(f"Log in to {self.endpoint}", user=self._first_user, error=error)
        self.push_screen(screen, self._login_entered)

    def _login_entered(self, entered: tuple[str, str] | None) -> None:
        """Connect as the entered user (in the background: the screen stays responsive)."""
        if entered is not None:
            self.run_worker(self.log_in(*entered), group="login", exit_on_error=False)

    async def log_in(self, user: str, password: str, *, unlocking: bool = False) -> bool:
        """Open a session as `user`; on success it replaces any previous one. A refusal asks again."""
        client = self._factory(user, password)
        try:
            await client.connect()
        except (LoginRefused, ClientError) as exc:
            await client.close()
            self._after_failed_login(user, str(exc), unlocking)
            return False
        old, self.client = self.client, client
        if old is not None:
            await old.close()
        self.user, self.locked = user, False
        self._last_input = self._now()
        self._main("#user").update(f"Logged in:   {user}")
        self.notify(f"logged in as {user}", title="Login", markup=False)
        await self.refresh_status()
        return True

    def _after_failed_login(self, user: str, why: str, unlocking: bool) -> None:
        """Show the refusal and ask again (the controller has recorded it)."""
        if unlocking:
            self._push_lock(error=why)
        else:
            self._first_user = user
            self.show_login(error=why)

    def check_lock(self) -> None:
        """Lock the console after lock_after_s without input (the session stays open; commands need the password)."""
        if self.user and not self.locked and self._now() - self._last_input >= self.lock_after_s:
            self.action_lock()

    def action_lock(self) -> None:
        """Lock now: the screen shows the machine but takes no command until the same person unlocks (or logs out)."""
        if not self.user or self.locked:
            return
        self.locked = True
        self._push_lock()

    def _push_lock(self, error: str = "") -> None:
        """The lock screen: this user's password unlocks, Log out hands the console over."""
        screen = LoginScreen(f"LOCKED - {self.user} was inactive. Password to unlock, or log out.", user=self.user,
                             user_fixed=True, error=error, allow_logout=True)
        self.push_screen(screen, self._unlock_entered)

    def _unlock_entered(self, entered: tuple[str, str] | None) -> None:
        """Unlock with the password (checked by the controller), or log out and show the login."""
        if entered is None:
            self.run_worker(self.log_out(), group="login", exit_on_error=False)
            return
        self.run_worker(self.log_in(self.user, entered[1], unlocking=True), group="login", exit_on_error=False)

    async def log_out(self) -> None:
        """Close the session and ask who logs in next."""
        client, self.client = self.client, None
        if client is not None:
            await client.close()
        self.user, self.locked = "", False
        self.connection_state = "logged out"
        self._main("#user").update("Logged in:   nobody")
        self.show_login()
