"""`fillfinish qa review|release|reject`: QA's review by exception and its signed release or rejection."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from fillfinish.record.vocabulary import typed
from fillfinish.quality import deviations as devs
from fillfinish.quality.cli_common import (
    BatchArg,
    DbOption,
    StdinOption,
    UserOption,
    ask_password,
    echo,
    opened,
    option_date,
)

qa_app = typer.Typer(name="qa", help="QA review, release and rejection of batches.", no_args_is_help=True,
                     add_completion=False)


@qa_app.command("review")
def qa_review(batch: BatchArg, db: DbOption = None) -> None:
    """Review by exception: checks, exceptions, viable results, deviations, signatures, what blocks release."""
    from fillfinish.people.signatures import manifestations
    from fillfinish.quality.release import readiness
    from fillfinish.record.export.summary import load_snapshot, review

    with opened(db, read_only=True) as (store, _users):  # a review changes nothing (deviation numbers come
        summary = review(load_snapshot(store, batch))       # with `deviation list|show|update`)
        state = readiness(store, batch)
        echo(f"Batch {batch}: final state {summary.final_state}; disposition {summary.verdict or '-'}")
        echo(f"QA decision: {summary.qa_decision_text()}")
        echo(f"Integrity: {state.integrity}")
        echo("Checks:")
        for c in summary.checks:
            echo(f"  [{c.status:<9}] {c.name}: {c.detail}")
        echo(f"Exceptions ({len(summary.exceptions)}):")
        for item in summary.exceptions:
            detail = f" - {item.detail}" if item.detail else ""
            echo(f"  entry {item.seq:<5} {item.kind:<15} {item.title}{detail}")
        sigs = manifestations(store, batch)
        echo(f"Signatures ({len(sigs)}):")
        for m in sigs:
            echo(f"  entry {m.seq:<5} {m.line()}")
        if state.performers:
            echo(f"Performed by: {', '.join(sorted(state.performers))} (may not release)")
        if state.ready:
            echo("Release: ready for QA release")
        else:
            echo("Release: BLOCKED")
            for reason in state.blockers:
                echo(f"  - {reason}")


@qa_app.command("release")
def qa_release(
    batch: BatchArg,
    user: UserOption,
    expiry: Annotated[str, typer.Option("--expiry", help="Product expiry date YYYY-MM-DD (mandatory): sets the "
                                        "retention date, the latest of the retention rules.")],
    comment: Annotated[str, typer.Option("--comment", help="Release comment (signature reason).")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Release the batch with a QA electronic signature (refused with every reason when not allowed)."""
    from fillfinish.quality.release import release

    d, result = _decide(release, batch, user, expiry, password_stdin, db, comment=comment)
    echo(f"batch {batch} released by {d.name} ({user}): {d.verdict}; signature entry "
         f"{result.signature.seq}, release entry {result.release.seq}")
    echo(f"keep the record until {d.retention_until} (" +
         "; ".join(f"{k}: {v}" for k, v in (d.retention_rules or {}).items()) + ")")


@qa_app.command("reject")
def qa_reject(
    batch: BatchArg,
    user: UserOption,
    reason: Annotated[str, typer.Option("--reason", help="Why the batch is rejected.")],
    expiry: Annotated[str, typer.Option("--expiry", help="Product expiry date YYYY-MM-DD (sets the retention date).")],
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Reject the batch with a QA electronic signature."""
    from fillfinish.quality.release import reject

    d, result = _decide(reject, batch, user, expiry, password_stdin, db, reason=reason)
    echo(f"batch {batch} rejected by {d.name} ({user}): {reason}; signature entry {result.signature.seq}, "
         f"rejection entry {result.release.seq}; keep the record until {d.retention_until}")


def _decide(decision: Any, batch: str, user: str, expiry: str, password_stdin: bool, db: Optional[str],
            **extra: Any) -> tuple[Any, Any]:
    """Run the QA `decision` (release or reject) for `batch` with the user's signature; return its data and result.

    Both decisions first bring the batch's deviations up to date, so a decision never misses a newly raised one.
    """
    expiry_date = option_date(expiry, "--expiry")
    with opened(db) as (store, users):
        devs.sync(store, batch)
        result = decision(store, batch, user, ask_password(user, password_stdin), users=users, expiry=expiry_date,
                          **extra)
        return typed(result.release), result
