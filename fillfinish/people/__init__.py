"""People and Part 11: user accounts, electronic signatures in the batch record, QA review and release (docs/people.md)."""

from typing import Any

from fillfinish.people.signatures import MEANINGS, Manifestation, SignatureRefused, manifestations, sign
from fillfinish.people.users import (
    ROLES,
    AccountLocked,
    AuthenticationError,
    PasswordExpired,
    PeopleError,
    PermissionDenied,
    User,
    UserError,
    UserStore,
)

__all__ = [
    "MEANINGS",
    "ROLES",
    "AccountLocked",
    "AuthenticationError",
    "Manifestation",
    "PasswordExpired",
    "PeopleError",
    "PermissionDenied",
    "ReleaseReadiness",
    "ReleaseRefused",
    "ReleaseResult",
    "SignatureRefused",
    "User",
    "UserError",
    "UserStore",
    "manifestations",
    "readiness",
    "release",
    "sign",
]

_MOVED = {"ReleaseReadiness", "ReleaseRefused", "ReleaseResult", "readiness", "release"}


def __getattr__(name: str) -> Any:
    """Release moved to fillfinish.quality.release (issue 9); its names are still reachable from here, loaded lazily
    because the quality package itself imports the people modules."""
    if name in _MOVED:
        from fillfinish.quality import release as moved

        return getattr(moved, name)
    raise AttributeError(f"module 'fillfinish.people' has no attribute {name!r}")
