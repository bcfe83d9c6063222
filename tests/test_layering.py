"""The package arrows point down: hal/ imports nothing of fillfinish/ or sim/; sim/ nothing of hal/ or fillfinish/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"hal": {"fillfinish", "sim"}, "sim": {"hal", "fillfinish"}}


def _imports(path: Path) -> set[str]:
    """Top-level package names imported anywhere in `path` (absolute imports only)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_or_beside_it(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {', '.join(sorted(_imports(path) & FORBIDDEN[package]))}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if _imports(path) & FORBIDDEN[package]
    ]
    assert not offenders, "; ".join(offenders)
