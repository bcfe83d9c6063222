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


def test_users_and_release_through_the_cli(db_url: str) -> None:
    """Bootstrap admin, admin-authorised adds, review shows the blockers, close, release; refusals exit 1."""
    assert cli(db_url, "user", "add", "root", "--role", "admin", "--full-name", "Ada Admin",
               input="root-pass-1\nroot-pass-1\n")[0] == 0
    code, out = cli(db_url, "user", "add", "quinn", "--role", "qa", "--full-name", "Quinn QA", "--password", "q-pass-123")
    assert code == 1 and "needs an administrator" in out
    for name, role in (("quinn", "qa"), ("olga", "operator")):
        code, out = cli(db_url, "user", "add", name, "--role", role, "--full-name", name.title(), "--password",
                        f"{name}-pass-1", "--admin", "root", "--admin-password", "root-pass-1")
        assert code == 0, out
    code, out = cli(db_url, "user", "add", "x", "--role", "boss", "--full-name", "X", "--password", "12345678")
    assert code == 1 and "allowed: operator, supervisor, qa, admin" in out
    code, out = cli(db_url, "user", "list")
    assert code == 0 and "quinn" in out and "active" in out

    with RecordStore(db_url) as store:
        batch = run_batch(store)

    code, out = cli(db_url, "qa", "review", batch)
    assert code == 0 and "Release: BLOCKED" in out and "deviation open" in out and "olga" in out
    assert "viable monitoring results missing" in out
    code, out = cli(db_url, "qa", "release", batch, "--user", "quinn", "--expiry", "2028-12-31", "--password-stdin",
                    input="quinn-pass-1\n")
    assert code == 1 and "release refused" in out and "Traceback" not in out and len(out.strip().splitlines()) == 1
    code, out = cli(db_url, "qa", "release", batch, "--user", "olga", "--expiry", "2028-12-31", "--password-stdin",
                    input="olga-pass-1\n")
    assert code == 1 and "needs role qa" in out
    code, out = cli(db_url, "qa", "release", batch, "--user", "quinn", "--password", "quinn-pass-1")
    assert code == 2  # no password on the command line: usage error


def test_lockout_and_disable_through_the_cli(db_url: str) -> None:
    """Five wrong passwords lock the account (exit 1 each); disable needs the admin; unknown batch is one line."""
    cli(db_url, "user", "add", "root", "--role", "admin", "--full-name", "Ada", "--password", "root-pass-1")
    cli(db_url, "user", "add", "quinn", "--role", "qa", "--full-name", "Quinn", "--password", "quinn-pass-1",
        "--admin", "root", "--admin-password", "root-pass-1")
    with RecordStore(db_url) as store:
        batch = run_batch(store, alarm=False)
    for _ in range(5):
        code, out = cli(db_url, "qa", "release", batch, "--user", "quinn", "--expiry", "2028-12-31",
                        "--password-stdin", input="wrong-password\n")
        assert code == 1
    assert "LOCKED" in out
    code, out = cli(db_url, "user", "list")
    assert "LOCKED" in out
    code, out = cli(db_url, "user", "unlock", "quinn", "--admin", "root", "--admin-password", "root-pass-1")
    assert code == 0
    code, out = cli(db_url, "user", "disable", "quinn", "--admin", "quinn", "--admin-password", "quinn-pass-1")
    assert code == 1 and "needs role admin" in out
    code, out = cli(db_url, "qa", "review", "B-20990101-0001")
    assert code == 1 and "unknown batch" in out
