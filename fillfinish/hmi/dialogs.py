"""The console's modal screens: the login (also the lock screen, with the user id fixed) and the electronic
signature, where the logged-in person enters the password again for a command the record needs signed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class LoginScreen(ModalScreen[tuple[str, str] | None]):
    """User id and password (a person logs in; the controller authenticates the session)."""

    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    #login-box { width: 64; height: auto; border: heavy $primary; padding: 1 2; background: $surface; }
    #login-box Input { margin: 1 0 0 0; }
    #login-error { color: $error; text-style: bold; height: auto; }
    """

    def __init__(self, title: str, *, user: str = "", user_fixed: bool = False, error: str = "",
                 allow_logout: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.user = user
        self.user_fixed = user_fixed
        self.error = error
        self.allow_logout = allow_logout

    def compose(self) -> ComposeResult:
        """Title, user id, password, error line, buttons."""
        with Vertical(id="login-box"):
            yield Static(self.title_text, id="login-title", markup=False)
            yield Input(value=self.user, placeholder="user id", id="login-user", disabled=self.user_fixed)
            yield Input(placeholder="password", password=True, id="login-password")
            yield Static(self.error, id="login-error", markup=False)
            with Horizontal():
                yield Button("Log in" if not self.user_fixed else "Unlock", id="login-ok", variant="primary")
                if self.allow_logout:
                    yield Button("Log out", id="login-logout")

    def on_mount(self) -> None:
        """Focus the first empty field."""
        self.query_one("#login-password" if self.user else "#login-user", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the user field moves on; Enter in the password field logs in."""
        if event.input.id == "login-user":
            self.query_one("#login-password", Input).focus()
        else:
            self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Log in / Unlock, or Log out (a locked console may be handed over to another person)."""
        event.stop()
        if event.button.id == "login-logout":
            self.dismiss(None)
        else:
            self._submit()

    def _submit(self) -> None:
        """Close with (user, password) once both are entered."""
        user = self.query_one("#login-user", Input).value.strip()
        password = self.query_one("#login-password", Input).value
        if not user or not password:
            self.show_error("enter your user id and password")
            return
        self.dismiss((user, password))

    def show_error(self, text: str) -> None:
        """Show why the login failed."""
        self.query_one("#login-error", Static).update(text)


class SignatureScreen(ModalScreen[str | None]):
    """An electronic signature: the logged-in person enters the password again for a command with a meaning."""

    DEFAULT_CSS = """
    SignatureScreen { align: center middle; }
    #sign-box { width: 72; height: auto; border: heavy $warning; padding: 1 2; background: $surface; }
    #sign-box Input { margin: 1 0 0 0; }
    """

    def __init__(self, user: str, command: str, meaning: str, reason: str) -> None:
        super().__init__()
        self.sig_user, self.sig_command, self.sig_meaning, self.sig_reason = user, command, meaning, reason

    def compose(self) -> ComposeResult:
        """What is signed, by whom, with which meaning; the password; Sign / Cancel."""
        with Vertical(id="sign-box"):
            yield Static(f"Electronic signature for {self.sig_command}", id="sign-title", markup=False)
            yield Static(f"Signed by: {self.sig_user}\nMeaning:   {self.sig_meaning}\nReason:    {self.sig_reason or '-'}",
                         id="sign-what", markup=False)
            yield Input(placeholder="your password", password=True, id="sign-password")
            with Horizontal():
                yield Button("Sign", id="sign-ok", variant="warning")
                yield Button("Cancel", id="sign-cancel")

    def on_mount(self) -> None:
        """Focus the password."""
        self.query_one("#sign-password", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter signs."""
        self._sign()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Sign or cancel."""
        event.stop()
        if event.button.id == "sign-ok":
            self._sign()
        else:
            self.dismiss(None)

    def _sign(self) -> None:
        """Close with the password once one is entered."""
        password = self.query_one("#sign-password", Input).value
        if password:
            self.dismiss(password)
