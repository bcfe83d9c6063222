"""Master data that decide whether a batch may start: controlled recipes, trained people, approved material lots,
cleaning and line clearance, and the line's aseptic qualification (APS), each kept in a hash-chained registry.

Every change is an entry of a registry (fillfinish/record/registry.py: `recipes`, `training`, `materials`,
`cleaning`, `clearance`); the current state is the fold of the entries. The checks before a batch are in
`start_checks.check_start`. docs/master-data.md describes the rules and the site settings.
"""

from __future__ import annotations


class MasterDataError(Exception):
    """A master-data command or start check refused; the message is one line naming what is wrong or missing."""
