"""Fixtures of the quality tests: a record on SQLite or PostgreSQL, a step clock, users of every role."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from fillfinish.people import UserStore
from fillfinish.record import RecordStore
from quality_helpers import PASSWORDS
from step_clock import StepClock

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def users(store: RecordStore, clock: StepClock) -> UserStore:
    """Accounts: admin root, operator olga, supervisor sam, QA quinn, qiana and quentin."""
    people = UserStore(store, now=clock, max_age_days=90, hasher=FAST_HASHER)
    for name, full, role in (("root", "Ada Admin", "admin"), ("olga", "Olga Operator", "operator"),
                             ("sam", "Sam Supervisor", "supervisor"), ("quinn", "Quinn Q. Assurance", "qa"),
                             ("qiana", "Qiana Quality", "qa"), ("quentin", "Quentin QA", "qa")):
        people.add(name, full, role, PASSWORDS[name], actor="setup")
    return people
