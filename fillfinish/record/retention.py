"""How long a batch record must be kept: the latest date any applicable rule asks for (records are never purged
before it; nothing in fillfinish deletes records at all).

Rules (domain brief, "Retention"): the company keeps batch records 3 years past the product's expiry; EU GMP
Chapter 4.11 asks for the longer of 1 year past expiry or 5 years past certification (QA release).
"""

from __future__ import annotations

import datetime as dt


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February -> 28 February
        return day.replace(year=day.year + years, day=28)


def retention_rules(expiry: dt.date, certified: dt.date) -> dict[str, dt.date]:
    """Each rule's keep-until date."""
    return {
        "company: expiry + 3 years": _add_years(expiry, 3),
        "EU GMP 4.11: expiry + 1 year": _add_years(expiry, 1),
        "EU GMP 4.11: certification + 5 years": _add_years(certified, 5),
    }


def retention_until(expiry: dt.date, certified: dt.date) -> dt.date:
    """The date before which the record may not be purged: the maximum of the rules."""
    return max(retention_rules(expiry, certified).values())
