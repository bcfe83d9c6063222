"""`fillfinish user|qa` end to end through typer: bootstrap, admin authority, review, release refusals (the whole
deviation/viable/release flow through the CLI is in tests/quality/test_quality_cli.py)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from fillfinish.people.cli import user_app
from fillfinish.quality.cli import deviation_app, qa_app
from fillfinish.record import RecordStore
from people_helpers import run_batch

app = typer.Typer()
app.add_typer(user_app, name="user")
app.add_typer(deviation_app, name="deviation")
app.add_typer(qa_app, name="qa")
runner = CliRunner()


def cli(db: str, *args: str, input: str | None = None) -> tuple[int, str]:  # noqa: A002 - CliRunner's name
    """Run the CLI against `db`; (exit code, stdout + stderr); never an unhandled exception."""
    result = runner.invoke(app, [*args, "--db", db], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


ROOT, QUINN, OLGA = "root-pass-123", "quinn-pass-12", "olga-pass-123"


def test_users_and_release_through_the_cli(db_url: str) -> None:
    """Bootstrap admin, admin-authorised adds, review shows the blockers, close, release; refusals exit 1."""
    assert cli(db_url, "user", "add", "root", "--role", "admin", "--full-name", "Ada Admin", "--password-stdin",
               input=f"{ROOT}\n")[0] == 0
    code, out = cli(db_url, "user", "add", "quinn", "--role", "qa", "--full-name", "Quinn QA", "--password-stdin",
                    input="q-pass-123456\n")
    assert code == 1 and "needs an administrator" in out
    for name, role, password in (("quinn", "qa", "first-quinn-1"), ("olga", "operator", "first-olga-12")):
        code, out = cli(db_url, "user", "add", name, "--role", role, "--full-name", name.title(), "--admin", "root",
                        "--password-stdin", input=f"{ROOT}\n{password}\n")
        assert code == 0 and "must change this password" in out, out
    code, out = cli(db_url, "user", "passwd", "quinn", "--password-stdin", input=f"first-quinn-1\n{QUINN}\n")
    assert code == 0, out
    cli(db_url, "user", "passwd", "olga", "--password-stdin", input=f"first-olga-12\n{OLGA}\n")
    code, out = cli(db_url, "user", "add", "x", "--role", "boss", "--full-name", "X", "--password-stdin",
                    input="12345678\n")
    assert code == 1 and "allowed: operator, supervisor, qa, admin" in out
    code, out = cli(db_url, "user", "list")
    assert code == 0 and "quinn" in out and "active" in out

    with RecordStore(db_url) as store:
        batch = run_batch(store)

    code, out = cli(db_url, "qa", "review", batch)
    assert code == 0 and "Release: BLOCKED" in out and "deviation open" in out and "olga" in out
    assert "viable monitoring results missing" in out
    code, out = cli(db_url, "qa", "release", batch, "--user", "quinn", "--expiry", "2028-12-31", "--password-stdin",
                    input=f"{QUINN}\n")
    assert code == 1 and "release refused" in out and "Traceback" not in out and len(out.strip().splitlines()) == 1
    code, out = cli(db_url, "qa", "release", batch, "--user", "olga", "--expiry", "2028-12-31", "--password-stdin",
                    input=f"{OLGA}\n")
    assert code == 1 and "needs role qa" in out
    code, out = cli(db_url, "qa", "release", batch, "--user", "quinn", "--password", QUINN)
    assert code == 2  # no password on the command line: usage error


def test_lockout_and_disable_through_the_cli(db_url: str) -> None:
    """Five wrong passwords lock the account (exit 1 each); disable needs the admin; unknown batch is one line."""
    cli(db_url, "user", "add", "root", "--role", "admin", "--full-name", "Ada", "--password-stdin", input=f"{ROOT}\n")
    cli(db_url, "user", "add", "quinn", "--role", "qa", "--full-name", "Quinn", "--admin", "root", "--password-stdin",
        input=f"{ROOT}\nfirst-quinn-1\n")
    cli(db_url, "user", "passwd", "quinn", "--password-stdin", input=f"first-quinn-1\n{QUINN}\n")
    with RecordStore(db_url) as store:
        batch = run_batch(store, alarm=False)
    for _ in range(5):
        code, out = cli(db_url, "qa", "release", batch, "--user", "quinn", "--expiry", "2028-12-31",
                        "--password-stdin", input="wrong-password\n")
        assert code == 1
    assert "LOCKED" in out
    code, out = cli(db_url, "user", "list")
    assert "LOCKED" in out
    code, out = cli(db_url, "user", "unlock", "quinn", "--admin", "root", "--password-stdin", input=f"{ROOT}\n")
    assert code == 0
    code, out = cli(db_url, "user", "disable", "quinn", "--admin", "quinn", "--password-stdin", input=f"{QUINN}\n")
    assert code == 1 and "needs role admin" in out
    code, out = cli(db_url, "qa", "review", "B-20990101-0001")
    assert code == 1 and "unknown batch" in out


def test_admin_set_password_must_be_changed_before_signing(db_url: str) -> None:
    """An account created or reset by an admin cannot sign until its owner changes the password (11.300)."""
    cli(db_url, "user", "add", "root", "--role", "admin", "--full-name", "Ada", "--password-stdin", input=f"{ROOT}\n")
    cli(db_url, "user", "add", "quinn", "--role", "qa", "--full-name", "Quinn", "--admin", "root", "--password-stdin",
        input=f"{ROOT}\nfirst-quinn-1\n")
    with RecordStore(db_url) as store:
        batch = run_batch(store, alarm=False)
    code, out = cli(db_url, "qa", "release", batch, "--user", "quinn", "--expiry", "2028-12-31", "--password-stdin", input="first-quinn-1\n")
    assert code == 1 and "must be changed" in out and "user passwd quinn" in out
    cli(db_url, "user", "passwd", "quinn", "--password-stdin", input=f"first-quinn-1\n{QUINN}\n")
    code, out = cli(db_url, "user", "reset-password", "quinn", "--admin", "root", "--password-stdin",
                    input=f"{ROOT}\nreset-by-admin-1\n")
    assert code == 0 and "must change it" in out
    code, out = cli(db_url, "qa", "release", batch, "--user", "quinn", "--expiry", "2028-12-31", "--password-stdin", input="reset-by-admin-1\n")
    assert code == 1 and "must be changed" in out


def test_password_stdin_and_terminal_rules(db_url: str) -> None:
    """No terminal and no --password-stdin: a clear refusal; stdin ending early is named; weak passwords refused."""
    code, out = cli(db_url, "user", "add", "root", "--role", "admin", "--full-name", "Ada")
    assert code == 1 and "no terminal" in out and "--password-stdin" in out
    code, out = cli(db_url, "user", "add", "root", "--role", "admin", "--full-name", "Ada", "--password-stdin",
                    input="")
    assert code == 1 and "standard input ended" in out
    code, out = cli(db_url, "user", "add", "root", "--role", "admin", "--full-name", "Ada", "--password-stdin",
                    input="password\n")
    assert code == 1 and "at least 12 characters" in out and "common passwords" in out
    code, out = cli(db_url, "user", "add", "root", "--role", "admin", "--full-name", "Ada", "--password", "x" * 12)
    assert code == 2, "passwords are not command-line options"
