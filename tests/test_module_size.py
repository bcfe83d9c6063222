"""Small modules with one job (issue 10 point 2, developers' guide rule 7): no module under fillfinish/, hal/ or sim/
over 400 lines, no function over 60. ALLOWED keeps only the migrations (the second test names every entry that is no
longer needed)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("fillfinish", "hal", "sim")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

ALLOWED: tuple[str, ...] = (
    "fillfinish/record/migrations/",  # an Alembic upgrade() lists its tables in one function
)
"""Modules (or folders, ending in /) not checked: only the Alembic migrations, which are history (never edited)."""


def _allowed_by(entry: str, rel: str) -> bool:
    """True when the allow-list entry `entry` covers module `rel` (the module itself, or a folder holding it)."""
    return rel == entry or (entry.endswith("/") and rel.startswith(entry))


def _allowed(rel: str) -> bool:
    """True when some allow-list entry covers module `rel`."""
    return any(_allowed_by(a, rel) for a in ALLOWED)


def _oversized(path: Path) -> list[str]:
    """What is too long in one module: the module itself and each function, with their line counts."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix()
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{rel}: {lines} lines (max {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=rel)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{rel}:{node.lineno} {node.name}(): {length} lines (max {MAX_FUNCTION_LINES})")
    return found


def _modules() -> list[Path]:
    """Every Python module of the checked packages."""
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_no_module_or_function_is_too_long() -> None:
    offenders = [o for p in _modules() if not _allowed(p.relative_to(ROOT).as_posix()) for o in _oversized(p)]
    assert not offenders, "split these (one job per module, <= 60 lines per function):\n" + "\n".join(offenders)


def test_the_allow_list_names_only_what_is_still_too_long() -> None:
    stale = [a for a in ALLOWED
             if not any(_oversized(p) for p in _modules() if _allowed_by(a, p.relative_to(ROOT).as_posix()))]
    assert not stale, f"remove from ALLOWED in {Path(__file__).name} (now small enough): {', '.join(stale)}"

