"""`fillfinish deviation list|show|update|close`: deviations, their 8D fields and QA's closure."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from fillfinish.record.vocabulary import typed
from fillfinish.quality import deviations as devs
from fillfinish.quality.cli_common import DbOption, NumberArg, StdinOption, UserOption, ask_password, echo, opened

deviation_app = typer.Typer(name="deviation", help="Deviations: list, show, work through 8D, close (QA).",
                            no_args_is_help=True, add_completion=False)


def _dev_line(dev: devs.Deviation) -> str:
    """One line per deviation for lists."""
    cls = dev.fields.get("classification") or "unclassified"
    return (f"{dev.number or '(unnumbered)':<14} {dev.batch_id:<16} {cls:<12} {dev.state():<45} {dev.title}")


@deviation_app.command("list")
def deviation_list(
    batch: Annotated[Optional[str], typer.Argument(help="Batch id (default: every batch).")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only open deviations.")] = False,
    db: DbOption = None,
) -> None:
    """Deviations with their number, classification and 8D state (new alarms are numbered and grouped first)."""
    with opened(db) as (store, _users):
        ids = [batch] if batch else [h.batch_id for h in store.batches() if store.entries(h.batch_id, kinds=["deviation"])]
        shown = 0
        for bid in ids:
            for dev in devs.sync(store, bid):
                if open_only and not dev.is_open:
                    continue
                echo(_dev_line(dev))
                shown += 1
        if not shown:
            echo("no deviations")


@deviation_app.command("show")
def deviation_show(number: NumberArg, db: DbOption = None) -> None:
    """One deviation: the alarms it groups, its 8D fields, classification, impact, who investigated, closure."""
    with opened(db) as (store, _users):
        dev = devs.get(store, number)
        echo(f"{dev.number}  batch {dev.batch_id}  {dev.state()}")
        for m in dev.members:
            event = typed(m)
            echo(f"  alarm entry {event.alarm_entry} at {m.ts:%Y-%m-%d %H:%M:%S} UTC: "
                 f"{event.message or event.source}")
        for name in devs.ALL_FIELDS:
            label = devs.FIELDS_8D.get(name, name)
            echo(f"  {label:<42} {dev.fields.get(name) or '-'}")
        echo(f"  investigators: {', '.join(sorted(dev.investigators)) or '-'}")


@deviation_app.command("update")
def deviation_update(
    number: NumberArg,
    user: UserOption,
    d1: Annotated[str, typer.Option("--d1", help="D1 team.")] = "",
    d2: Annotated[str, typer.Option("--d2", help="D2 problem description.")] = "",
    d3: Annotated[str, typer.Option("--d3", help="D3 containment.")] = "",
    d4: Annotated[str, typer.Option("--d4", help="D4 root cause.")] = "",
    d5: Annotated[str, typer.Option("--d5", help="D5 corrective action.")] = "",
    d6: Annotated[str, typer.Option("--d6", help="D6 verification of the corrective action.")] = "",
    d7: Annotated[str, typer.Option("--d7", help="D7 preventive action.")] = "",
    d8: Annotated[str, typer.Option("--d8", help="D8 closure and recognition.")] = "",
    classification: Annotated[str, typer.Option("--classification", help="minor, major or critical.")] = "",
    impact: Annotated[str, typer.Option("--impact", help="Impact on the batch.")] = "",
    password_stdin: StdinOption = False,
    db: DbOption = None,
) -> None:
    """Record 8D fields as an investigator (old and new values are kept)."""
    given = dict(zip(devs.FIELDS_8D, (d1, d2, d3, d4, d5, d6, d7, d8), strict=True))
    given.update(classification=classification, impact=impact)
    values = {k: v for k, v in given.items() if v.strip()}
    with opened(db) as (store, users):
        entry = devs.update(store, number, values, user=user, password=ask_password(user, password_stdin), users=users)
        dev = devs.get(store, number)
        echo(f"{number} updated by {user} (entry {entry.seq}): {', '.join(typed(entry).changes or {})}; {dev.state()}")


@deviation_app.command("close")
def deviation_close(number: NumberArg, user: UserOption,
                    comment: Annotated[str, typer.Option("--comment", help="Closure comment.")] = "",
                    password_stdin: StdinOption = False, db: DbOption = None) -> None:
    """QA closes a deviation whose 8D is complete, by signature (not one of its investigators)."""
    with opened(db) as (store, users):
        closed, sig = devs.close(store, number, user=user, password=ask_password(user, password_stdin), comment=comment,
                                 users=users)
        echo(f"{number} closed by {typed(sig).name} (entry {closed.seq}, signature entry {sig.seq})")
