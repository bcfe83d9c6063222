"""docs/recipes.md documents every recipe field, so the schema and its documentation cannot drift apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from fillfinish.recipes.schema import Recipe

DOC = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text(encoding="utf-8")
FIELDS = [(section, name) for section, info in Recipe.model_fields.items()
          for name in info.annotation.model_fields]  # type: ignore[union-attr]


@pytest.mark.parametrize(("section", "name"), FIELDS, ids=[f"{s}.{n}" for s, n in FIELDS])
def test_field_is_documented(section: str, name: str) -> None:
    assert f"### [{section}]" in DOC
    assert f"| `{name}` |" in DOC
