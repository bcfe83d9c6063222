"""fillfinish/password_input.py and password_rules.py: one line of stdin per password, no prompt without a terminal,
the site's rules."""

from __future__ import annotations

import io

import pytest

from fillfinish.password_input import PasswordInputError, read_password
from fillfinish.password_rules import PasswordRules, WeakPassword


def test_password_stdin_reads_one_line_each() -> None:
    stdin = io.StringIO("first one here\r\nsecond  one \n")
    assert read_password("admin", from_stdin=True, stdin=stdin) == "first one here"
    assert read_password("new", from_stdin=True, stdin=stdin) == "second  one ", "spaces are part of a password"
    with pytest.raises(PasswordInputError, match="standard input ended before the password asked for \\(next\\)"):
        read_password("next", from_stdin=True, stdin=stdin)
    with pytest.raises(PasswordInputError, match="empty line"):
        read_password("x", from_stdin=True, stdin=io.StringIO("\n"))


def test_no_prompt_without_a_terminal() -> None:
    with pytest.raises(PasswordInputError, match="no terminal to ask on; .*--password-stdin"):
        read_password("Password for op1", from_stdin=False, stdin=io.StringIO("secret\n"))


def test_site_rules() -> None:
    rules = PasswordRules(min_length=14)
    assert rules.problems("a-good-long-passphrase", "k.lind") == []
    assert rules.problems("short-one-1", "k.lind") == ["password must have at least 14 characters (it has 11)"]
    with pytest.raises(WeakPassword, match="not be the user id"):
        rules.check("Quality.Person.1", "quality.person.1")
    with pytest.raises(WeakPassword, match="common passwords"):
        PasswordRules().check("Password123456", "x")
