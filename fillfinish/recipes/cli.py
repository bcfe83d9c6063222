"""`fillfinish recipe validate FILE...`: check recipe files and print every problem, never a traceback."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from fillfinish.recipes.loader import RecipeError, load_recipe
from fillfinish.recipes.shipped import resolve_recipe, shipped_names

__all__ = ["app", "validate"]

app = typer.Typer(help="Recipe files: validate before approval and use.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _group() -> None:
    """Recipe commands (a callback keeps `validate` a subcommand when this app is mounted or run alone)."""


@app.command()
def validate(
    files: Annotated[Optional[list[str]], typer.Argument(
        help="recipe TOML files or shipped recipe names to check (none: every shipped recipe)", show_default=False,
    )] = None,
) -> None:
    """Validate recipe files: 'ok FILE (product, version, hash)' or every problem; exit 1 if any file is invalid."""
    paths = [resolve_recipe(value) for value in files] if files else [
        resolve_recipe(name) for name in shipped_names()
    ]
    if not paths:
        typer.echo("recipe validate: no files given and no shipped recipes found; allowed: recipe TOML files",
                   err=True)
        raise typer.Exit(code=2)
    failed = 0
    for path in paths:
        try:
            loaded = load_recipe(path)
        except RecipeError as exc:
            failed += 1
            for line in exc.problems:
                typer.echo(line, err=True)
            continue
        except Exception as exc:  # noqa: BLE001 - the user gets a line, never a traceback
            failed += 1
            typer.echo(f"{path}: file: could not be checked ({type(exc).__name__}: {exc}); allowed: a TOML recipe",
                       err=True)
            continue
        info = loaded.recipe.recipe
        draft = ", draft: not usable for a batch until approved" if info.status == "draft" else ""
        typer.echo(f"ok {path} ({info.product_name} [{info.product_code}], version {info.version}, "
                   f"sha256 {loaded.sha256[:12]}{draft})")
    if failed:
        typer.echo(f"{failed} of {len(paths)} recipe file(s) invalid", err=True)
        raise typer.Exit(code=1)
