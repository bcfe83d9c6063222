"""Password rules of the site (21 CFR 11.300(a)(b)): a minimum length, not the user id, not a common password.

The rules are a site setting (`[security.passwords]` in the site config, see docs/security.md); `UserStore` checks
every password it sets against them. The list of common passwords is package data (fillfinish/data/), kept small:
it only has to catch the passwords an attacker tries first.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MIN_LENGTH = 12
"""Shortest password accepted unless the site sets another (NIST SP 800-63B allows 8; we ask for more)."""

MIN_DISTINCT_CHARACTERS = 4
"""A password made of fewer different characters ("aaaaaaaaaaaa", "121212121212") is refused."""


class WeakPassword(ValueError):
    """A password breaks the site's rules; the message lists every rule it breaks."""


class PasswordRules(BaseModel):
    """[security.passwords]: the minimum length; the user id and the common-password list are always refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    min_length: int = Field(default=DEFAULT_MIN_LENGTH, ge=8, le=128,
                            description="shortest password accepted (characters)")

    def problems(self, password: str, username: str) -> list[str]:
        """Every rule `password` breaks for account `username` (empty when it is acceptable)."""
        if not isinstance(password, str):
            return ["a password must be text"]
        found: list[str] = []
        if len(password) < self.min_length:
            found.append(f"password must have at least {self.min_length} characters (it has {len(password)})")
        if username and password.strip().lower() == username.strip().lower():
            found.append("password must not be the user id")
        if password.lower() in common_passwords():
            found.append("password is in the list of common passwords")
        if len(set(password)) < MIN_DISTINCT_CHARACTERS:
            found.append(f"password must use at least {MIN_DISTINCT_CHARACTERS} different characters")
        return found

    def check(self, password: str, username: str) -> None:
        """Raise WeakPassword naming every broken rule."""
        found = self.problems(password, username)
        if found:
            raise WeakPassword("; ".join(found))


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-case (package data fillfinish/data/common-passwords.txt)."""
    text = resources.files("fillfinish").joinpath("data/common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))
