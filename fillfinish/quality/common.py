"""Pieces every quality service shares: the refusal error, who may act (authenticated, by role), and what a batch's
header snapshot says (its recipe's sampling plan, the site's quality settings, the line id)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from fillfinish.config import QualitySettings
from fillfinish.people.users import PeopleError, PermissionDenied, User, UserStore
from fillfinish.recipes.sampling import RetainedSamples, ViableMonitoring
from fillfinish.record.models import BatchHeader

QA_ROLE = "qa"
REVIEWER_ROLES = ("qa", "supervisor")
"""Roles that may verify a second person's manual entry (Annex 11 s.6)."""

QUALITY_KINDS = frozenset({"signature", "deviation", "release", "rejection", "viable_result", "viable_verified",
                           "mediafill_result"})
"""Entry kinds written while reviewing or after the fill; being their actor is not 'performing' the batch."""


class QualityRefused(PeopleError):
    """A quality action was refused; the message names the batch, the action and every reason."""

    def __init__(self, batch_id: str, action: str, reasons: Iterable[str]) -> None:
        """Keep the reasons; the message lists them all."""
        self.batch_id = batch_id
        self.action = action
        self.reasons = list(reasons)
        super().__init__(f"batch {batch_id}: {action} refused: " + "; ".join(self.reasons))


def authenticated(users: UserStore, user: str, password: str, roles: Iterable[str], purpose: str) -> User:
    """Authenticate `user` (user id + password) and require one of `roles` (PermissionDenied otherwise)."""
    allowed = tuple(roles)
    account = users.authenticate(user, password, purpose=purpose)
    if account.role not in allowed:
        raise PermissionDenied(f"user {account.username} has role {account.role}; {purpose} needs role "
                               f"{' or '.join(allowed)}")
    return account


def recipe_of(header: BatchHeader) -> dict[str, Any]:
    """The header's recipe snapshot as a dict ({} when it is not TOML)."""
    try:
        return tomllib.loads(header.recipe_snapshot)
    except (tomllib.TOMLDecodeError, TypeError, ValueError):
        return {}


def viable_plan_of(header: BatchHeader) -> ViableMonitoring:
    """The batch's viable monitoring plan from its recipe snapshot (the defaults when the recipe has none)."""
    section = recipe_of(header).get("viable_monitoring")
    try:
        return ViableMonitoring.model_validate(section if isinstance(section, dict) else {})
    except ValidationError:
        return ViableMonitoring()


def retained_plan_of(recipe: dict[str, Any]) -> RetainedSamples:
    """The retained-sample plan of a recipe dict (defaults when absent or unreadable)."""
    section = recipe.get("retained_samples")
    try:
        return RetainedSamples.model_validate(section if isinstance(section, dict) else {})
    except ValidationError:
        return RetainedSamples()


def settings_of(header: BatchHeader) -> QualitySettings:
    """The site's quality settings as snapshotted in the batch header (defaults when the snapshot has none)."""
    section = header.site_config.get("quality") if isinstance(header.site_config, dict) else None
    try:
        return QualitySettings.model_validate(section if isinstance(section, dict) else {})
    except ValidationError:
        return QualitySettings()


def line_id_of(header: BatchHeader) -> str:
    """The line that ran the batch: the site config snapshot's line id (several places tried), else 'line-1'."""
    cfg = header.site_config if isinstance(header.site_config, dict) else {}
    if isinstance(cfg.get("line_id"), str) and cfg["line_id"]:
        return str(cfg["line_id"])
    for section, key in (("record", "line_id"), ("site", "line_id"), ("line", "id"), ("line", "line_id"), ("quality", "line_id")):
        value = cfg.get(section, {}).get(key) if isinstance(cfg.get(section), dict) else None
        if isinstance(value, str) and value:
            return value
    return "line-1"
