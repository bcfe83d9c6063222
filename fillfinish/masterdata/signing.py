"""Authority checks and electronic signatures for master-data changes (21 CFR 11.10(g), 11.50, 11.70).

A change is signed by an authenticated user whose role allows it; the signature (printed name, user id, role,
meaning, reason) is part of the registry entry's data, so the entry's hash binds it to exactly that change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fillfinish.masterdata import MasterDataError
from fillfinish.people.users import PeopleError, User, UserStore
from fillfinish.record.store import RecordStore

__all__ = ["authenticate", "signature", "as_utc", "parse_date", "parse_moment", "iso"]


def authenticate(store: RecordStore, username: str, password: str, roles: tuple[str, ...], what: str) -> User:
    """Authenticate `username` (lockout and ageing as UserStore does) and check that their role is one of `roles`."""
    users = UserStore(store)
    try:
        account = users.authenticate(username, password, purpose=what)
    except PeopleError as exc:
        raise MasterDataError(f"{what}: {exc}") from None
    if account.role not in roles:
        raise MasterDataError(f"{what}: {username} has role {account.role}; allowed: {', '.join(roles)}")
    return account


def signature(account: User, meaning: str, reason: str = "") -> dict[str, Any]:
    """The signature manifestation kept in a registry entry (11.50: printed name, meaning; time is the entry's)."""
    return {"name": account.full_name, "user_id": account.username, "role": account.role, "meaning": meaning,
            "reason": reason, "authenticated": True}


def as_utc(moment: float | dt.datetime) -> dt.datetime:
    """A Unix time (the shared clock) or a datetime as an aware UTC datetime."""
    if isinstance(moment, dt.datetime):
        return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(float(moment), dt.UTC)


def iso(moment: float | dt.datetime) -> str:
    """ISO-8601 UTC text of a moment, seconds precision, with 'Z'."""
    return as_utc(moment).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_date(text: str, field: str) -> dt.date:
    """A YYYY-MM-DD date, or a one-line error naming the option."""
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise MasterDataError(f"{field}: '{text}' is not a date; allowed: YYYY-MM-DD") from None


def parse_moment(text: str) -> dt.datetime:
    """An ISO-8601 date or date-time (UTC when no zone is given), as an aware UTC datetime."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
