"""Build hook: copy the editable recipes/*.toml into the wheel as fillfinish/recipes/shipped/ package data.

All metadata lives in pyproject.toml; this file only adds the copy step (decision 0014).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithRecipes(build_py):
    """build_py that also places the shipped recipes inside the fillfinish package."""

    def run(self) -> None:
        """Build the packages, then copy recipes/*.toml into build_lib/fillfinish/recipes/shipped/."""
        super().run()
        source = Path(__file__).resolve().parent / "recipes"
        target = Path(self.build_lib) / "fillfinish" / "recipes" / "shipped"
        target.mkdir(parents=True, exist_ok=True)
        for recipe in sorted(source.glob("*.toml")):
            shutil.copy2(recipe, target / recipe.name)


setup(cmdclass={"build_py": BuildWithRecipes})
