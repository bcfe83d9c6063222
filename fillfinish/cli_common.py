"""What the command-line modules share: logging on stderr, the record URL rule, the password source, the batch
summary table. Parsing and printing only; the work is done by the services."""

from __future__ import annotations

import os
import sys
from typing import Any

import structlog

from fillfinish.batch.authority import PasswordSource
from fillfinish.cli_errors import err, out


class _StderrLogger:
    """A structlog logger writing to whatever sys.stderr is at the time of the call (not the stream of the moment
    logging was configured, which a test runner or a redirect may have closed since)."""

    def msg(self, message: str) -> None:
        """Write one event line."""
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


class _StderrLoggerFactory:
    """structlog logger factory for _StderrLogger."""

    def __call__(self, *args: Any) -> _StderrLogger:
        """One logger per bound logger (they share nothing)."""
        return _StderrLogger()


def configure_logging(verbose: bool) -> None:
    """Warnings (debug with --verbose) on stderr; asyncua's own notices only with --verbose."""
    import logging

    level = logging.DEBUG if verbose else logging.WARNING
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level),
                        logger_factory=_StderrLoggerFactory())
    # asyncua's own notices (revised session timeouts, no security on the simulator) are not the operator's business
    logging.basicConfig(level=logging.ERROR if not verbose else logging.INFO, stream=sys.stderr)
    logging.getLogger("asyncua").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def db_url(value: str | None, site_default: str | None = None) -> str:
    """--db, else $FILLFINISH_DB, else the site config's [database] url (run, batch), else sqlite:///fillfinish.db;
    a bare file path means an SQLite file (the same rule as `fillfinish record`)."""
    from fillfinish.record.cli import resolve_db_url

    if value is None and not os.environ.get("FILLFINISH_DB") and site_default:
        return site_default
    return resolve_db_url(value)


def password_of(person: str, from_stdin: bool) -> PasswordSource:
    """The password source a service calls when the record has accounts: a hidden prompt, or one stdin line."""
    from fillfinish.password_input import read_password

    return lambda: read_password(f"Password for {person}", from_stdin=from_stdin)


def notice(text: str) -> None:
    """A service's notice for the person, on stderr."""
    from rich.markup import escape

    err.print(escape(text))


def print_summary(outcome: Any, db_url: str) -> None:
    """The batch's end as a table: state, counts, UV dose, excursions, disposition, where the record is."""
    from rich.table import Table

    t = Table(title=f"Batch {outcome.batch_id}", show_header=False)
    t.add_row("final state", outcome.state)
    t.add_row("vials filled (accepted)", str(outcome.accepted))
    t.add_row("vials rejected", str(outcome.rejected))
    t.add_row("vials uncertain", str(outcome.uncertain))
    t.add_row("UV dose delivered", f"{outcome.uv_dose_mj_cm2:.1f} mJ/cm2 (reference point)")
    if outcome.tip_dose_mj_cm2:
        t.add_row("tip station dose", f"{outcome.tip_dose_mj_cm2:.1f} mJ/cm2")
    t.add_row("excursions / interlocks", "\n".join(outcome.excursions) or "none")
    if outcome.disposition is not None:
        colour = "green" if outcome.disposition.suitable else "red"
        t.add_row("disposition", f"[bold {colour}]{outcome.disposition.verdict}")
        for r in outcome.disposition.reasons:
            t.add_row("", f"- {r['reason']}" + (f" (entries {', '.join(map(str, r['entries'][:8]))})"
                                                  if r["entries"] else ""))
    if outcome.message:
        t.add_row("note", outcome.message)
    t.add_row("record", f"{db_url}  (fillfinish record show {outcome.batch_id})")
    out.print(t)
