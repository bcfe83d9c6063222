"""Retention: the latest date any rule asks for, recorded at release."""

from __future__ import annotations

import datetime as dt

from fillfinish.record.retention import retention_rules, retention_until


def test_company_rule_wins_for_a_long_shelf_life() -> None:
    # expiry 2029-06-30: company 2032-06-30; GMP 4.11: 2030-06-30 or certification + 5 y = 2031-11-25
    assert retention_until(dt.date(2029, 6, 30), dt.date(2026, 11, 25)) == dt.date(2032, 6, 30)


def test_certification_rule_wins_for_a_short_shelf_life() -> None:
    assert retention_until(dt.date(2027, 5, 31), dt.date(2026, 11, 25)) == dt.date(2031, 11, 25)


def test_leap_day_and_every_rule_listed() -> None:
    rules = retention_rules(dt.date(2028, 2, 29), dt.date(2028, 2, 29))
    assert rules["company: expiry + 3 years"] == dt.date(2031, 2, 28)
    assert len(rules) == 3


def test_release_records_the_retention_date(store, users) -> None:  # type: ignore[no-untyped-def]
    from fillfinish.people import release
    from people_helpers import PASSWORDS, run_batch
    from test_release import close_all, viable_done

    batch = run_batch(store)
    viable_done(store, users, batch)
    close_all(store, users, batch)
    result = release(store, batch, "quinn", PASSWORDS["quinn"], users=users, expiry=dt.date(2028, 12, 31))
    data = result.release.data
    assert data["expiry"] == "2028-12-31"
    assert data["retention_until"] == max(data["retention_rules"].values())
    assert store.verify(batch).ok
