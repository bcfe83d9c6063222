"""Recipes: one TOML file per product, validated (schema), loaded with a content hash (loader), checked from the CLI."""

from fillfinish.recipes.loader import LoadedRecipe, RecipeError, load_recipe, validate_files
from fillfinish.recipes.schema import Recipe

__all__ = ["LoadedRecipe", "Recipe", "RecipeError", "load_recipe", "validate_files"]
