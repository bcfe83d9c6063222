"""Shipped recipes: found by name from the checkout (and, in a wheel, as package data), listed in errors by name."""

from __future__ import annotations

from pathlib import Path

from fillfinish.recipes.loader import load_recipe
from fillfinish.recipes.shipped import resolve_recipe, shipped_names

ROOT = Path(__file__).resolve().parents[2]


def test_every_recipe_of_the_checkout_is_shipped_and_loads() -> None:
    assert shipped_names() == sorted(p.stem for p in (ROOT / "recipes").glob("*.toml"))
    for name in shipped_names():
        assert load_recipe(resolve_recipe(name)).recipe.recipe.version


def test_a_path_wins_over_a_name_and_unknown_names_stay_as_given(tmp_path: Path) -> None:
    own = tmp_path / "fgf2.toml"
    own.write_text("x")
    assert resolve_recipe(own) == own
    assert resolve_recipe("no-such-recipe") == Path("no-such-recipe")
    assert resolve_recipe("fgf2.toml").name == "fgf2.toml"
