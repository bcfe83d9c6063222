"""`fillfinish viable ...` and `fillfinish mediafill result`: viable monitoring results and the media-fill outcome."""

from __future__ import annotations

from typing import Annotated

import typer

from fillfinish.record.vocabulary import typed
from fillfinish.quality import viable
from fillfinish.quality.cli_common import BatchArg, DbOption, StdinOption, UserOption, ask_password, echo, opened

viable_app = typer.Typer(name="viable", help="Viable (microbial) monitoring results: enter, verify, list.",
                         no_args_is_help=True, add_completion=False)
mediafill_app = typer.Typer(name="mediafill", help="Media-fill (APS) outcome after incubation.", no_args_is_help=True,
                            add_completion=False)


# ---------------------------------------------------------------------------------------------------- viable
@viable_app.command("add")
def viable_add(
    batch: BatchArg,
    sample: Annotated[str, typer.Argument(help="Planned sample id (SP-n, AA-n, GP-n, CP-n; see `viable list`).")],
    cfu: Annotated[int, typer.Option("--cfu", min=0, help="Colony-forming units counted.")],
    incubation_start: Annotated[str, typer.Option("--incubation-start", help="ISO-8601 time (UTC unless an offset "
                                                  "is given).")],
    incubation_end: Annotated[str, typer.Option("--incubation-end", help="ISO-8601 time.")],
    medium_lot: Annotated[str, typer.Option("--medium-lot", help="Lot of the culture medium.")],
    user: UserOption,
    organism: Annotated[str, typer.Option("--organism", help="Organism identified (grade A/B growth).")] = "",
    correction: Annotated[str, typer.Option("--correction", help="Why a result already entered is superseded.")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Enter one sample's result as its reader (signed 'performed'); a second person verifies it."""
    with opened(db) as (store, users):
        result, sig = viable.add_result(store, batch, sample, cfu=cfu, incubation_start=incubation_start,
                                        incubation_end=incubation_end, medium_lot=medium_lot, user=user,
                                        password=ask_password(user, password_stdin), organism=organism,
                                        correction=correction, users=users)
        d, signer = typed(result), typed(sig)
        echo(f"{sample} ({d.location}, grade {d.grade}): {d.cfu} CFU, {d.level} "
             f"({d.limits.get('text', '')}); entry {result.seq}, signed by {signer.name} (entry {sig.seq})")
        if d.level == "action":
            echo("action excursion: a deviation was opened; see `fillfinish deviation list " + batch + "`")


@viable_app.command("verify")
def viable_verify(batch: BatchArg, sample: Annotated[str, typer.Argument(help="Sample id.")], user: UserOption,
                  password_stdin: StdinOption = False, db: DbOption = None) -> None:
    """Verify a result entered by someone else (QA or supervisor; signed 'reviewed')."""
    with opened(db) as (store, users):
        entry, sig = viable.verify_result(store, batch, sample, user=user, password=ask_password(user, password_stdin),
                                          users=users)
        echo(f"{sample} verified by {typed(sig).name} (entry {entry.seq}, signature entry {sig.seq})")


@viable_app.command("list")
def viable_list(batch: BatchArg, db: DbOption = None) -> None:
    """Every planned sample of the batch with its limits, result and verification."""
    with opened(db) as (store, _users):
        st = viable.status(store.batch(batch), store.entries(batch))
        for s in st.samples:
            p = s.planned
            d = typed(s.result) if s.result else None
            result = f"{d.cfu} CFU {s.level} (reader {d.reader})" if d is not None else "NO RESULT"
            check = f"verified by {typed(s.verified).verified_by}" if s.verified else (
                "NOT VERIFIED" if s.result else "")
            echo(f"{p.sample_id:<5} {viable.SAMPLE_TYPES[p.sample_type][1]:<13} grade {p.grade}  "
                 f"{p.location:<22} limit {s.limits.text():<30} {result}  {check}")
        for line in st.blockers():
            echo(f"release waits: {line}")


# ---------------------------------------------------------------------------------------------------- media fill
@mediafill_app.command("result")
def mediafill_result(
    batch: BatchArg,
    incubated: Annotated[int, typer.Option("--incubated", min=0, help="Units incubated.")],
    growth: Annotated[int, typer.Option("--growth", min=0, help="Units with growth (turbid).")],
    reader: Annotated[str, typer.Option("--reader", help="User id of the person who read the units.")],
    verifier: Annotated[str, typer.Option("--verifier", help="User id of the second person (QA or supervisor).")],
    not_incubated: Annotated[int, typer.Option("--not-incubated", min=0, help="Units not incubated.")] = 0,
    justification: Annotated[str, typer.Option("--justification", help="Why units were not incubated.")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Record a media fill's outcome, signed by reader and verifier (stdin: reader's line, then verifier's)."""
    from fillfinish.quality.mediafill import record_result

    with opened(db) as (store, users):
        reader_pw = ask_password(reader, password_stdin)
        verifier_pw = ask_password(verifier, password_stdin)
        out = record_result(store, batch, incubated=incubated, growth=growth, not_incubated=not_incubated,
                            justification=justification, reader=reader, reader_password=reader_pw,
                            verifier=verifier, verifier_password=verifier_pw, users=users)
        d = typed(out.result)
        verdict = "PASSED" if out.passed else "FAILED: " + "; ".join(d.reasons or [])
        echo(f"media fill {batch} on {d.line_id}: {verdict} (filled {d.units_filled}, incubated "
             f"{d.incubated}, growth {d.growth}, not incubated {d.not_incubated}); entry "
             f"{out.result.seq}, registry entry REG-MEDIAFILL/{out.registry.seq}")
        if not out.passed:
            raise typer.Exit(1)
