"""`fillfinish ...`: the command line. It parses arguments, calls a service, prints; fillfinish/cli_errors.py maps
every error a person may cause to one line and an exit code (0 ok, 1 failed/refused, 2 usage), never a traceback.

The commands live in modules by subject: cli_batch.py (run, demo, batch ...), cli_console.py (command, hmi, diagram,
sim), and each package's own sub-app (record, recipe, user, qa, ...), mounted here.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from fillfinish.cli_batch import batch_app, demo, run
from fillfinish.cli_common import configure_logging as _configure_logging
from fillfinish.cli_console import command, diagram, hmi, sim
from fillfinish.cli_errors import err, out, run as _run  # noqa: F401 - `_run` kept for sub-apps that import it
from fillfinish.errors import UserError  # noqa: F401 - re-exported: the error a person's request ends in
from fillfinish.inputs import load_config as _load_config  # noqa: F401 - kept for sub-apps that import it
from fillfinish.masterdata.cli import mount as _mount_master_data
from fillfinish.people.cli import user_app
from fillfinish.quality.cli import deviation_app, mediafill_app, qa_app, register_record_commands, viable_app
from fillfinish.line_status import app as line_app
from fillfinish.recipes.cli import app as recipe_app
from fillfinish.record.cli import app as record_app
from fillfinish.record.site_cli import app as site_app

app = typer.Typer(help="fillfinish: controller, batch record and simulator of an aseptic fill-finish machine.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.add_typer(recipe_app, name="recipe")
app.add_typer(record_app, name="record")
app.add_typer(user_app, name="user")
app.add_typer(deviation_app, name="deviation")
app.add_typer(qa_app, name="qa")
app.add_typer(viable_app, name="viable")
app.add_typer(mediafill_app, name="mediafill")
register_record_commands(record_app)
app.add_typer(line_app, name="line")
app.add_typer(batch_app, name="batch")
app.add_typer(site_app, name="site")
_mount_master_data(app)  # recipe import|approve|retire|list|show, training, material, cleaning, clearance
for _command in (demo, run, sim, command, hmi, diagram):
    app.command()(_command)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs on stderr")] = False) -> None:
    """fillfinish: controller, batch record and simulator of an aseptic fill-finish machine."""
    _configure_logging(verbose)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted")
        sys.exit(1)
