"""[security] of the site config: where the controller's OPC UA certificate lives, anonymous read-only sessions,
the console's inactivity lock and the password rules (docs/security.md).

Every field has a default, so older site configs and the simulator's emitted config keep working.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fillfinish.password_rules import PasswordRules

CONFIG_ENV = "FILLFINISH_CONFIG"
"""A site config for commands that take no --config (user, qa, deviation): its [security.passwords] rules apply."""


class SecuritySettings(BaseModel):
    """[security]: controller certificate folder, anonymous read-only access, console lock, password rules."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    pki_dir: Annotated[Path, Field(strict=False)] = Field(
        default=Path("pki"), description="folder of the controller's OPC UA certificate and key (created on first "
                                         "start); relative paths are relative to the site config file")
    allow_anonymous_read: bool = Field(default=False, description="let anonymous sessions browse and read the "
                                                                  "controller's tags (never write or call methods)")
    console_lock_after_s: float = Field(default=300.0, ge=10, le=86_400,
                                        description="real seconds of inactivity after which the console locks")
    passwords: PasswordRules = Field(default_factory=PasswordRules, description="password rules")


def password_rules_from_env() -> PasswordRules:
    """The password rules of the site config named by $FILLFINISH_CONFIG, else the defaults (min length 12)."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return PasswordRules()
    from fillfinish.config import load_site_config

    return load_site_config(path).security.passwords
