"""`fillfinish viable|mediafill|deviation|qa ...` and `fillfinish record purge|hold|backup|restore`: the CLI only
parses, calls a quality service and prints. Passwords are asked on the terminal (hidden, getpass) or read as one line
per person from stdin with --password-stdin; never given on the command line. Every refusal is one line on stderr and
exit 1 (usage errors exit 2), never a traceback.

The commands live in cli_results (viable, mediafill), cli_deviations, cli_qa and cli_record on cli_common;
this module gathers the apps fillfinish/cli.py adds.
"""

from __future__ import annotations

from fillfinish.quality.cli_deviations import deviation_app
from fillfinish.quality.cli_qa import qa_app
from fillfinish.quality.cli_record import register_record_commands
from fillfinish.quality.cli_results import mediafill_app, viable_app

__all__ = ["deviation_app", "mediafill_app", "qa_app", "register_record_commands", "viable_app"]
