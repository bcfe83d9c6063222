"""`recipe validate`: ok lines for good files, every problem for bad ones, exit 0/1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from fillfinish.recipes import load_recipe
from fillfinish.recipes.cli import app

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "recipes").glob("*.toml"))
BAD = Path(__file__).resolve().parent / "bad"
runner = CliRunner()


def test_all_shipped_recipes_ok() -> None:
    result = runner.invoke(app, ["validate", *map(str, SHIPPED)])
    assert result.exit_code == 0, result.output
    for path in SHIPPED:
        loaded = load_recipe(path)
        line = (f"ok {path} ({loaded.recipe.recipe.product_name} [{loaded.recipe.recipe.product_code}], "
                f"version {loaded.recipe.recipe.version}, sha256 {loaded.sha256[:12]})")
        assert line in result.stdout.splitlines()
    assert "Traceback" not in result.output


def test_bad_files_exit_1_with_every_problem() -> None:
    bad = sorted(BAD.glob("*.toml"))
    result = runner.invoke(app, ["validate", str(SHIPPED[0]), *map(str, bad), str(BAD / "no-such-file.toml")])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"ok {SHIPPED[0]} " in result.stdout
    for path in bad:
        assert f"{path}: " in result.stderr
    assert f"{BAD / 'no-such-file.toml'}: file: file not found" in result.stderr
    assert f"{len(bad) + 1} of {len(bad) + 2} recipe file(s) invalid" in result.stderr
    assert all("; allowed: " in line for line in result.stderr.splitlines()[:-1])


def test_draft_is_valid_but_flagged(tmp_path: Path) -> None:
    text = (ROOT / "recipes" / "fgf2.toml").read_text(encoding="utf-8")
    text = text.replace('status = "approved"', 'status = "draft"').replace('approved_by = "qa.lindqvist"\n', "")
    text = text.replace("approved_on = 2026-11-20\n", "")
    draft = tmp_path / "draft.toml"
    draft.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(draft)])
    assert result.exit_code == 0, result.output
    assert "draft: not usable for a batch until approved" in result.stdout


def test_no_files_validates_the_shipped_recipes() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 4 and "fgf2.toml" in result.output


def test_mounts_as_recipe_validate() -> None:
    root = typer.Typer()
    root.add_typer(app, name="recipe")

    @root.command()
    def other() -> None:
        """A second command so that `root` is a group, as in the real CLI."""

    result = runner.invoke(root, ["recipe", "validate", str(SHIPPED[0])])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok {SHIPPED[0]} ")
