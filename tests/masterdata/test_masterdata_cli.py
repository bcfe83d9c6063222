"""The master-data commands as a person types them: --help, --password-stdin, one-line refusals with exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fillfinish.cli import app
from fillfinish.masterdata.demo import ensure_user
from fillfinish.people.users import UserStore
from fillfinish.record.store import RecordStore

from masterdata_helpers import FGF2

runner = CliRunner()


@pytest.fixture(autouse=True)
def _reset_logging() -> object:
    """The CLI's callback points structlog at the runner's (then closed) stderr: restore the defaults after."""
    import structlog

    yield
    structlog.reset_defaults()


def ff(*args: str, password: str | None = None) -> tuple[int, str, str]:
    """Run `fillfinish ARGS` (password on stdin when given); (exit code, stdout, stderr)."""
    res = runner.invoke(app, list(args), input=None if password is None else password + "\n")
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def db(db_url: str) -> tuple[str, dict[str, str]]:
    with RecordStore(db_url) as store:
        users = UserStore(store)
        pw = {n: ensure_user(users, n, r, n) for n, r in (("qa.karin", "qa"), ("qa.lena", "qa"),
                                                           ("sup.sven", "supervisor"), ("op.anna", "operator"))}
    return db_url, pw


@pytest.mark.parametrize("command", [["recipe", "import"], ["recipe", "approve"], ["recipe", "retire"],
                                     ["recipe", "list"], ["recipe", "show"], ["training", "add"],
                                     ["training", "list"], ["material", "receive"], ["material", "approve"],
                                     ["material", "reject"], ["material", "list"], ["cleaning", "record"],
                                     ["cleaning", "list"], ["clearance", "confirm"]])
def test_every_command_has_help(command: list[str]) -> None:
    code, out, _ = ff(*command, "--help")
    assert code == 0 and "Usage" in out and "--password VALUE" not in out


def test_recipe_import_approve_list_show_with_password_on_stdin(db: tuple[str, dict[str, str]]) -> None:
    url, pw = db
    code, out, err = ff("recipe", "import", str(FGF2), "--user", "sup.sven", "--password-stdin", "--db", url,
                        password=pw["sup.sven"])
    assert code == 0, err
    assert "imported fgf2 version 1 as draft" in out
    code, _, err = ff("recipe", "approve", "fgf2", "1", "--user", "sup.sven", "--password-stdin", "--db", url,
                      password=pw["sup.sven"])
    assert code == 1 and err.count("\n") == 1 and "role supervisor; allowed: qa" in err
    code, out, err = ff("recipe", "approve", "fgf2", "1", "--user", "qa.karin", "--effective", "2026-11-01",
                        "--password-stdin", "--db", url, password=pw["qa.karin"])
    assert code == 0, err
    assert "approved fgf2 version 1" in out and "effective from 2026-11-01" in out
    code, out, _ = ff("recipe", "list", "--db", url)
    assert code == 0 and "approved" in out and "qa.karin" in out
    code, out, _ = ff("recipe", "show", "fgf2", "1", "--text", "--db", url)
    assert code == 0 and out.rstrip("\n") == FGF2.read_text().rstrip("\n")


def test_refusals_are_one_line_without_traceback(db: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, pw = db
    cases = [
        (["recipe", "import", str(tmp_path / "none.toml"), "--user", "sup.sven", "--password-stdin"], "none.toml"),
        (["recipe", "approve", "fgf2", "1", "--user", "qa.karin", "--password-stdin"], "not imported"),
        (["material", "receive", "V-1", "--material", "glass", "--supplier", "S", "--supplier-lot", "1",
          "--quantity", "10", "--expiry", "2027-01-01", "--certificate", "C", "--user", "op.anna",
          "--password-stdin"], "material 'glass' is not allowed"),
        (["material", "receive", "V-1", "--material", "vial", "--supplier", "S", "--supplier-lot", "1",
          "--quantity", "10", "--expiry", "soon", "--certificate", "C", "--user", "op.anna", "--password-stdin"],
         "--expiry: 'soon' is not a date"),
        (["material", "approve", "V-9", "--user", "qa.karin", "--password-stdin"], "unknown lot"),
        (["training", "add", "op.anna", "--what", "recipe", "--subject", "fgf2", "--valid-until", "2027-01-01",
          "--trainer", "op.anna", "--password-stdin"], "role operator"),
        (["clearance", "confirm", "--user", "op.anna", "--operator", "op.anna", "--password-stdin"],
         "second person"),
        (["cleaning", "record", "--procedure", "SOP-1", "--agent-lot", "A1", "--user", "op.anna",
          "--password-stdin"], None),
    ]
    for args, expected in cases:
        code, _, err = ff(*args, "--db", url, password=pw.get(args[args.index("--user") + 1] if "--user" in args
                                                                else "op.anna", "x"))
        if expected is None:
            assert code == 0, err
            continue
        assert code == 1, (args, err)
        assert expected in err and "Traceback" not in err and err.count("\n") == 1, (args, err)


def test_no_terminal_and_no_password_stdin_is_refused(db: tuple[str, dict[str, str]]) -> None:
    url, _ = db
    code, _, err = ff("clearance", "confirm", "--user", "op.anna", "--db", url)
    assert code == 1 and "--password-stdin" in err
