"""The recipes shipped with fillfinish: found as package data in an installed wheel, or in the checkout's recipes/.

recipes/ at the top of the checkout is the editable source; the wheel build (setup.py) copies its *.toml files into
fillfinish/recipes/shipped/, so `fillfinish demo` and `fillfinish recipe validate` work from a plain `pip install .`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["shipped_dir", "shipped_names", "resolve_recipe"]

_PACKAGED = Path(__file__).resolve().parent / "shipped"
_CHECKOUT = Path(__file__).resolve().parent.parent.parent / "recipes"


def shipped_dir() -> Path | None:
    """The folder holding the shipped recipe files: package data when installed, else the checkout's recipes/."""
    for folder in (_PACKAGED, _CHECKOUT):
        if folder.is_dir() and any(folder.glob("*.toml")):
            return folder
    return None


def shipped_names() -> list[str]:
    """Names of the shipped recipes (file stems, e.g. 'fgf2'), sorted; empty when none are found."""
    folder = shipped_dir()
    return sorted(p.stem for p in folder.glob("*.toml")) if folder else []


def resolve_recipe(value: str | Path) -> Path:
    """A recipe argument as a path: an existing file as given, else a shipped recipe named `value` (e.g. 'il2').

    A value that is neither is returned unchanged, so the loader reports 'file not found' with the shipped names.
    """
    path = Path(value)
    if path.is_file():
        return path
    folder = shipped_dir()
    if folder is not None and path.suffix in ("", ".toml") and path.parent == Path("."):
        candidate = folder / f"{path.stem}.toml"
        if candidate.is_file():
            return candidate
    return path
