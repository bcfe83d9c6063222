"""Passwords never on a command line: asked on the terminal (hidden), or read from standard input with
`--password-stdin` when a script runs the command (one line per password asked, in the order of the prompts).

Every command that needs a password calls `read_password`; the option is `PasswordStdinOption`. A password on the
command line would show in the process list and the shell history (21 CFR 11.300, docs/security.md).
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, TextIO

import typer

PASSWORD_STDIN_HELP = ("read the password(s) from standard input, one line each, in the order they would be asked "
                       "(for scripts; passwords are never command-line options)")

PasswordStdinOption = Annotated[bool, typer.Option("--password-stdin", help=PASSWORD_STDIN_HELP)]
"""The one option every password-taking command offers."""


class PasswordInputError(Exception):
    """No password could be read (no terminal and no --password-stdin, standard input ended, empty line)."""


def read_password(prompt: str, *, from_stdin: bool, confirm: bool = False, stdin: TextIO | None = None) -> str:
    """One password: the next line of standard input with --password-stdin, else a hidden prompt on the terminal
    (twice when `confirm`). Raises PasswordInputError with a one-line reason when neither is possible."""
    stream = stdin if stdin is not None else sys.stdin
    if from_stdin:
        line = stream.readline()
        if not line:
            raise PasswordInputError(f"--password-stdin: standard input ended before the password asked for "
                                     f"({prompt})")
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise PasswordInputError(f"--password-stdin: empty line where the password was expected ({prompt})")
        return password
    if not _interactive(stream):
        raise PasswordInputError(f"{prompt}: no terminal to ask on; give the password on standard input with "
                                 "--password-stdin")
    while True:
        password = getpass.getpass(f"{prompt}: ")
        if not password:
            raise PasswordInputError(f"{prompt}: no password given")
        if not confirm or getpass.getpass(f"{prompt} (again): ") == password:
            return password
        print("the two entries differ; try again", file=sys.stderr)


def _interactive(stream: TextIO) -> bool:
    """True when `stream` is a terminal a person can type into."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
