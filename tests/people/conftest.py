"""Fixtures of the people tests: a record on SQLite (temp file) or PostgreSQL (fresh schema), a clock, users."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from fillfinish.people import UserStore
from fillfinish.record import RecordStore
from people_helpers import PASSWORDS, StepClock

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def alerts() -> list[tuple[str, str]]:
    """Lockout alerts raised during the test."""
    return []


@pytest.fixture
def users(store: RecordStore, clock: StepClock, alerts: list[tuple[str, str]]) -> UserStore:
    """Accounts: admin 'root', operator 'olga', supervisor 'sam', QA 'quinn' and 'qiana' (passwords in PASSWORDS)."""
    people = UserStore(store, now=clock, max_age_days=90, alert=lambda u, d: alerts.append((u, d)),
                       hasher=FAST_HASHER)
    for name, full, role in (("root", "Ada Admin", "admin"), ("olga", "Olga Operator", "operator"),
                             ("sam", "Sam Supervisor", "supervisor"), ("quinn", "Quinn Q. Assurance", "qa"),
                             ("qiana", "Qiana Quality", "qa")):
        people.add(name, full, role, PASSWORDS[name], actor="setup")
    return people
