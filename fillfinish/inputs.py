"""The files a person names (site config, recipe), loaded into models or refused with a UserError that names the file,
the field, what was wrong and what is allowed; shared by the CLI and the batch services."""

from __future__ import annotations

from pathlib import Path

from fillfinish.config import SiteConfig
from fillfinish.errors import UserError
from fillfinish.recipes.loader import LoadedRecipe


def load_config(path: Path) -> SiteConfig:
    """The site config at `path`, its PLC node ids checked; UserError listing every problem."""
    from fillfinish.config import ConfigError, load_site_config
    from hal.plc.signals import validate_nodes

    try:
        config = load_site_config(path)
        validate_nodes(dict(config.plc.nodes))
    except ConfigError as exc:
        raise UserError("\n".join(exc.problems)) from exc
    except ValueError as exc:
        raise UserError(f"{path}: plc.nodes: {exc}") from exc
    return config


def load_recipe(value: Path | str) -> LoadedRecipe:
    """A recipe by file path or shipped name; whether it may run is the record's signed approval (start checks)."""
    from fillfinish.recipes.loader import RecipeError
    from fillfinish.recipes.loader import load_recipe as _load
    from fillfinish.recipes.shipped import resolve_recipe, shipped_names

    path = resolve_recipe(value)
    if not path.is_file():
        names = ", ".join(shipped_names()) or "none found"
        raise UserError(f"{value}: recipe: file not found; allowed: the path of a recipe TOML file or a shipped "
                        f"recipe name ({names})")
    try:
        return _load(path)
    except RecipeError as exc:
        raise UserError("\n".join(exc.problems)) from exc


def check_fit(loaded: LoadedRecipe, config: SiteConfig, source: str) -> None:
    """UserError listing every way the recipe does not fit the configured pump and syringe (before any device)."""
    from fillfinish.line_fit import recipe_fit_problems

    problems = recipe_fit_problems(loaded.recipe, config, source)
    if problems:
        raise UserError("\n".join(problems))


def recipe_from_record(snapshot: str, batch_id: str, recipe_hash: str) -> LoadedRecipe:
    """A batch's recipe from its record snapshot, hash-checked; UserError when it does not match."""
    from fillfinish.recipes.loader import RecipeError, loaded_from_text

    try:
        return loaded_from_text(snapshot, f"record:{batch_id}", recipe_hash)
    except RecipeError as exc:
        raise UserError("\n".join(exc.problems)) from exc
