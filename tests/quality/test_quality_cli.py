"""The quality commands through typer: --help everywhere, passwords only by prompt or --password-stdin, the whole
path from viable results and 8D deviations to release, purge, hold, backup and restore; refusals exit 1 in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fillfinish.quality.cli import deviation_app, mediafill_app, qa_app, register_record_commands, viable_app
from fillfinish.people import UserStore
from fillfinish.record import RecordStore
from quality_helpers import PASSWORDS, run_batch

# the sub-apps as fillfinish/cli.py mounts them, without the main callback (it binds structlog to CliRunner's stdout)
app = typer.Typer()
for sub, name in ((viable_app, "viable"), (mediafill_app, "mediafill"), (deviation_app, "deviation"), (qa_app, "qa")):
    app.add_typer(sub, name=name)
record_app = typer.Typer()
register_record_commands(record_app)
app.add_typer(record_app, name="record")
runner = CliRunner()

COMMANDS = [("viable", "add"), ("viable", "verify"), ("viable", "list"), ("mediafill", "result"),
            ("deviation", "list"), ("deviation", "show"), ("deviation", "update"), ("deviation", "close"),
            ("qa", "release"), ("qa", "reject"), ("qa", "review"), ("record", "purge"), ("record", "hold"),
            ("record", "backup"), ("record", "restore")]


def cli(db: str, *args: str, input: str | None = None) -> tuple[int, str]:  # noqa: A002 - CliRunner's name
    """Run `fillfinish ARGS --db DB`; (exit code, output); never an unhandled exception."""
    result = runner.invoke(app, [*args, "--db", db], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def refused(code: int, out: str, text: str) -> None:
    """Exit 1, one line, no traceback, naming `text`."""
    assert code == 1, out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out, out
    assert text in out, out


@pytest.mark.parametrize(("group", "command"), COMMANDS, ids=[f"{g}-{c}" for g, c in COMMANDS])
def test_every_command_has_help_and_no_password_option(group: str, command: str) -> None:
    result = runner.invoke(app, [group, command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
    assert "--password " not in result.output.replace("--password-stdin", "")


def test_from_results_to_release_and_purge(store: RecordStore, users: UserStore, db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Viable add/verify/list, deviation list/update/show/close, qa release, record hold/purge/backup/restore."""
    batch = run_batch(store, alarms=2)
    store.close()
    pw = lambda *names: "".join(PASSWORDS[n] + "\n" for n in names)  # noqa: E731
    common = ["--incubation-start", "2026-11-26T08:00", "--incubation-end", "2026-11-30T08:00", "--medium-lot", "T-1"]
    code, out = cli(db_url, "viable", "add", batch, "SP-1", "--cfu", "0", *common, "--user", "olga")
    refused(code, out, "pass it on stdin with --password-stdin")
    code, out = cli(db_url, "viable", "add", batch, "SP-9", "--cfu", "0", *common, "--user", "olga",
                    "--password-stdin", input=pw("olga"))
    refused(code, out, "no planned sample 'SP-9'")
    for sample in ("SP-1", "GP-1"):
        code, out = cli(db_url, "viable", "add", batch, sample, "--cfu", "0", *common, "--user", "olga",
                        "--password-stdin", input=pw("olga"))
        assert code == 0 and "signed by Olga Operator" in out, out
    code, out = cli(db_url, "viable", "verify", batch, "SP-1", "--user", "olga", "--password-stdin", input=pw("olga"))
    refused(code, out, "needs role qa or supervisor")
    code, out = cli(db_url, "viable", "verify", batch, "SP-1", "--user", "sam", "--password-stdin", input=pw("sam"))
    assert code == 0, out
    code, out = cli(db_url, "viable", "list", batch)
    assert code == 0 and "verified by sam" in out and "NOT VERIFIED" in out and "no growth" in out
    cli(db_url, "viable", "verify", batch, "GP-1", "--user", "sam", "--password-stdin", input=pw("sam"))

    code, out = cli(db_url, "deviation", "list", batch)
    assert code == 0 and "FFX-2026-0001" in out and "(+1 related alarms)" in out, out
    code, out = cli(db_url, "deviation", "update", "FFX-2026-0001", "--user", "sam", "--classification", "huge",
                    "--password-stdin", input=pw("sam"))
    refused(code, out, "allowed: minor, major, critical")
    args = [f"--d{i}" for i in range(1, 9)]
    values = [x for a in args for x in (a, f"{a} text")]
    code, out = cli(db_url, "deviation", "update", "FFX-2026-0001", "--user", "quinn", *values, "--classification",
                    "minor", "--impact", "none", "--password-stdin", input=pw("quinn"))
    assert code == 0 and "awaiting QA closure" in out, out
    code, out = cli(db_url, "deviation", "show", "FFX-2026-0001")
    assert code == 0 and "D4 root cause" in out and "--d4 text" in out and "investigators: quinn" in out
    code, out = cli(db_url, "deviation", "close", "FFX-2026-0001", "--user", "quinn", "--password-stdin",
                    input=pw("quinn"))
    refused(code, out, "the investigator cannot approve its own closure")
    code, out = cli(db_url, "deviation", "close", "FFX-2026-0001", "--user", "qiana", "--password-stdin",
                    input=pw("qiana"))
    assert code == 0 and "closed by Qiana Quality" in out, out

    code, out = cli(db_url, "qa", "release", batch, "--user", "quentin", "--expiry", "31/12/2029", "--password-stdin",
                    input=pw("quentin"))
    refused(code, out, "--expiry: '31/12/2029' is not a date; allowed: YYYY-MM-DD")
    code, out = cli(db_url, "qa", "release", batch, "--user", "quentin", "--password-stdin", input=pw("quentin"))
    assert code == 2  # --expiry is mandatory
    code, out = cli(db_url, "qa", "release", batch, "--user", "quentin", "--expiry", "2029-06-30", "--password-stdin",
                    input=pw("quentin"))
    assert code == 0 and "released by Quentin QA" in out and "keep the record until 2032-06-30" in out, out
    code, out = cli(db_url, "qa", "review", batch)
    assert "QA decision: RELEASED by Quentin QA (quentin)" in out and "2032-06-30" in out

    code, out = cli(db_url, "record", "hold", batch, "--user", "root", "--reason", "audit", "--password-stdin",
                    input=pw("root"))
    assert code == 0 and "placed" in out
    code, out = cli(db_url, "record", "purge", batch, "--user", "qiana", "--password-stdin", input=pw("qiana"))
    refused(code, out, "retention date 2032-06-30 not reached")
    assert "under legal hold" in out
    backup = tmp_path / "copy.backup"
    code, out = cli(db_url, "record", "backup", str(backup))
    assert code == 0 and backup.is_file(), out
    code, out = cli(db_url, "record", "backup", str(backup))
    refused(code, out, "never overwrites")
    if db_url.startswith("sqlite"):
        code, out = cli(f"sqlite:///{tmp_path / 'restored.db'}", "record", "restore", str(backup))
        assert code == 0 and "restored into" in out and f"{batch}: intact" in out, out


def test_media_fill_result_through_the_cli(store: RecordStore, users: UserStore, db_url: str) -> None:
    """Reader's and verifier's passwords on two stdin lines; one positive unit: FAILED, exit 1."""
    batch = run_batch(store, mode="media_fill")
    store.close()
    code, out = cli(db_url, "mediafill", "result", batch, "--incubated", "3", "--growth", "1", "--reader", "olga",
                    "--verifier", "sam", "--password-stdin", input=PASSWORDS["olga"] + "\n" + PASSWORDS["sam"] + "\n")
    assert code == 1 and "FAILED: 1 unit(s) with growth" in out and "line-7" in out, out
    code, out = cli(db_url, "mediafill", "result", batch, "--incubated", "3", "--growth", "0", "--reader", "olga",
                    "--verifier", "sam", "--password-stdin", input=PASSWORDS["olga"] + "\n" + PASSWORDS["sam"] + "\n")
    refused(code, out, "already recorded")


def test_unknown_things_are_one_line(db_url: str, store: RecordStore) -> None:
    """Unknown batch, unknown deviation number: exit 1, one line."""
    store.close()
    refused(*cli(db_url, "viable", "list", "B-20990101-0001"), "unknown batch")
    refused(*cli(db_url, "deviation", "show", "DEV-2099-0001"), "no deviation numbered")



def test_the_main_cli_mounts_the_quality_commands() -> None:
    """`fillfinish viable|mediafill|deviation|qa` and `fillfinish record purge|hold|backup|restore` exist."""
    import subprocess
    import sys

    for args in (["viable", "--help"], ["mediafill", "result", "--help"], ["record", "purge", "--help"],
                 ["qa", "reject", "--help"]):
        done = subprocess.run([sys.executable, "-m", "fillfinish", *args], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2])
        assert done.returncode == 0 and "Usage" in done.stdout, (args, done.stderr)
