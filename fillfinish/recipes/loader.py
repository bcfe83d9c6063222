"""Load recipe files: read the exact bytes, hash them, parse TOML, validate against the schema.

The SHA-256 of the file bytes is the recipe's identity in the batch record: two files with the same hash are the
same recipe, byte for byte, and any edit (even a comment) gives a new hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from fillfinish.recipes.schema import Recipe
from fillfinish.validation import FileProblemsError, load_toml_model

__all__ = ["LoadedRecipe", "RecipeError", "load_recipe", "loaded_from_text", "validate_files"]

_WHAT = "a TOML recipe: [recipe], [fill], [uv], [tips], [hold_times], [check_weigh], [environment]"


class RecipeError(FileProblemsError):
    """A recipe file was rejected; `problems` holds every reason, each "FILE: field: message; allowed: ..."."""


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe with the exact text it came from and the SHA-256 (hex) of the file bytes."""

    recipe: Recipe
    text: str
    sha256: str
    path: Path


def load_recipe(path: str | Path) -> LoadedRecipe:
    """Read, hash and validate one recipe file; raise RecipeError listing every problem found."""
    recipe, read = load_toml_model(path, Recipe, _WHAT, RecipeError)
    return LoadedRecipe(recipe=recipe, text=read.text, sha256=hashlib.sha256(read.data).hexdigest(), path=Path(path))


def validate_files(paths: Iterable[str | Path]) -> list[tuple[Path, list[str]]]:
    """Validate many recipe files; one (path, problems) per file, problems empty when the file is valid."""
    results: list[tuple[Path, list[str]]] = []
    for path in paths:
        try:
            load_recipe(path)
        except RecipeError as exc:
            results.append((Path(path), exc.problems))
        else:
            results.append((Path(path), []))
    return results


def loaded_from_text(text: str, label: str, expected_sha256: str | None = None) -> LoadedRecipe:
    """Rebuild a recipe from the snapshot kept in a batch record (resume after a crash); check its hash if given."""
    import tomllib

    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise RecipeError(Path(label), [f"{label}: recipe snapshot hash {digest[:12]} does not match the batch "
                                        f"header's {expected_sha256[:12]}; allowed: the exact recipe of the batch"])
    try:
        recipe = Recipe.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise RecipeError(Path(label), [f"{label}: recipe snapshot no longer validates: {exc}"]) from None
    return LoadedRecipe(recipe=recipe, text=text, sha256=digest, path=Path(label))
