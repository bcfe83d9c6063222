"""People and Part 11: user accounts, electronic signatures in the batch record, QA review and release (docs/people.md)."""

from fillfinish.people.release import (
    OpenDeviation,
    ReleaseReadiness,
    ReleaseRefused,
    ReleaseResult,
    close_deviation,
    open_deviations,
    readiness,
    release,
)
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
    "OpenDeviation",
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
    "close_deviation",
    "manifestations",
    "open_deviations",
    "readiness",
    "release",
    "sign",
]
