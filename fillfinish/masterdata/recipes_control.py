"""Recipes under document control (EU GMP 4.x, 21 CFR 211.100): import as draft, QA approval with an effective date,
retirement; only the approved, effective version of a recipe may run a batch, byte for byte.

Registry `recipes`, entry kinds:
- `recipe_imported` {name, version, sha256, text, mode, product_code, source, author}
- `recipe_approved` {name, version, sha256, effective_from (YYYY-MM-DD), signature}
- `recipe_retired`  {name, version, sha256, reason, signature}
The file's own `status`/`approved_by` text is not an approval; the registry is.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fillfinish.masterdata import MasterDataError
from fillfinish.masterdata.settings import SiteFloor
from fillfinish.masterdata.signing import authenticate, signature
from fillfinish.recipes.loader import LoadedRecipe, RecipeError, load_recipe
from fillfinish.recipes.schema import Recipe
from fillfinish.record.registry import append_registry
from fillfinish.record.store import RecordStore
from fillfinish.record.typed_registry import read_registry, signer
from fillfinish.record.vocabulary_registries import RecipeApproved, RecipeImported, RecipeRetired

REGISTRY = "recipes"
AUTHOR_ROLES = ("supervisor", "qa", "admin")
APPROVER_ROLES = ("qa",)


@dataclass
class RecipeVersion:
    """One imported recipe version as the registry says it is now."""

    name: str
    version: int
    sha256: str
    text: str
    mode: str
    product_code: str
    author: str
    imported_at: dt.datetime
    imported_seq: int
    status: str = "draft"  # draft, approved, retired
    approved_by: str | None = None
    approver_name: str | None = None
    approved_at: dt.datetime | None = None
    approved_seq: int | None = None
    effective_from: dt.date | None = None
    retired_by: str | None = None

    def summary(self) -> dict[str, Any]:
        """The version as a JSON-able dict (list/show and the batch's master-data entry)."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "mode": self.mode,
                "product_code": self.product_code, "status": self.status, "author": self.author,
                "approved_by": self.approved_by, "approver_name": self.approver_name,
                "approved_at": self.approved_at.isoformat() if self.approved_at else None,
                "approval_entry": self.approved_seq,
                "effective_from": self.effective_from.isoformat() if self.effective_from else None,
                "retired_by": self.retired_by}


def versions(store: RecordStore) -> dict[tuple[str, int], RecipeVersion]:
    """Fold the `recipes` registry into the current state of every (name, version)."""
    state: dict[tuple[str, int], RecipeVersion] = {}
    for row in read_registry(store, REGISTRY):
        d = row.data
        if isinstance(d, RecipeImported):
            state[(d.name, d.version)] = RecipeVersion(d.name, d.version, d.sha256, d.text, d.mode, d.product_code,
                                                       d.author, row.ts, row.seq)
        elif isinstance(d, RecipeApproved) and (d.name, d.version) in state:
            v, sig = state[(d.name, d.version)], signer(d.signature)
            v.status, v.approved_by, v.approver_name = "approved", sig.user_id, sig.name
            v.approved_at, v.approved_seq = row.ts, row.seq
            v.effective_from = dt.date.fromisoformat(d.effective_from)
        elif isinstance(d, RecipeRetired) and (d.name, d.version) in state:
            state[(d.name, d.version)].status = "retired"
            state[(d.name, d.version)].retired_by = signer(d.signature).user_id
    return state


def _load(path: Path) -> LoadedRecipe:
    """Load and validate a recipe file, turning its problems into one refusal."""
    try:
        return load_recipe(path)
    except RecipeError as exc:
        raise MasterDataError("; ".join(exc.problems)) from None


def import_recipe(store: RecordStore, path: Path, author: str, password: str) -> RecipeVersion:
    """Store the exact bytes of a valid recipe file as a draft version (content hash, author)."""
    loaded = _load(path)
    info = loaded.recipe.recipe
    account = authenticate(store, author, password, AUTHOR_ROLES, f"import recipe {info.name} v{info.version}")
    existing = versions(store).get((info.name, info.version))
    if existing is not None:
        if existing.sha256 == loaded.sha256:
            raise MasterDataError(f"recipe {info.name} version {info.version} is already imported "
                                  f"(sha256 {loaded.sha256[:12]}, {existing.status})")
        raise MasterDataError(f"recipe {info.name} version {info.version} is already imported with another "
                              f"content (sha256 {existing.sha256[:12]}); raise [recipe] version for a change")
    append_registry(store, REGISTRY, "recipe_imported", {
        "name": info.name, "version": info.version, "sha256": loaded.sha256, "text": loaded.text,
        "mode": info.mode, "product_code": info.product_code, "source": str(path), "author": account.username,
        "signature": signature(account, "authored")}, account.username)
    return versions(store)[(info.name, info.version)]


def is_ctg(recipe: Recipe, floor: SiteFloor) -> bool:
    """Whether the recipe makes a cell therapy grade product (its product code carries the site's marker)."""
    return floor.ctg_marker.upper() in recipe.recipe.product_code.upper()


def floor_problems(recipe: Recipe, floor: SiteFloor) -> list[str]:
    """Where a production recipe is looser than the site's floor (empty when it is not)."""
    if recipe.recipe.mode != "production":
        return []
    env, fill, problems = recipe.environment, recipe.fill, []
    if env.particles_0_5um_action_per_m3 > floor.particles_0_5um_action_max_per_m3:
        problems.append(f"environment.particles_0_5um_action_per_m3 {env.particles_0_5um_action_per_m3:g} is above "
                        f"the site floor {floor.particles_0_5um_action_max_per_m3:g}")
    if env.particles_5um_action_per_m3 > floor.particles_5um_action_max_per_m3:
        problems.append(f"environment.particles_5um_action_per_m3 {env.particles_5um_action_per_m3:g} is above the "
                        f"site floor {floor.particles_5um_action_max_per_m3:g}")
    tolerance_percent = fill.tolerance_abs_ul / fill.fill_volume_ul * 100.0
    if tolerance_percent > floor.fill_tolerance_max_percent + 1e-9:
        problems.append(f"fill tolerance +/-{tolerance_percent:g} % is wider than the site maximum "
                        f"+/-{floor.fill_tolerance_max_percent:g} %")
    if is_ctg(recipe, floor) and floor.ctg_requires_presterilised_tips and not recipe.tips.require_presterilised_lot:
        problems.append(f"tips.method '{recipe.tips.method}': cell therapy grade needs a pre-sterilised tip lot "
                        "(Annex 1 8.71: UV alone does not sterilise)")
    return problems


def approve_recipe(store: RecordStore, name: str, version: int, user: str, password: str, *,
                   effective_from: dt.date, floor: SiteFloor, reason: str = "") -> RecipeVersion:
    """QA (not the author) approves a draft version from `effective_from`; refused if looser than the site floor."""
    what = f"approve recipe {name} v{version}"
    v = versions(store).get((name, version))
    if v is None:
        raise MasterDataError(f"{what}: not imported; run `fillfinish recipe import FILE` first")
    if v.status != "draft":
        raise MasterDataError(f"{what}: version is {v.status}; only a draft can be approved")
    account = authenticate(store, user, password, APPROVER_ROLES, what)
    if account.username == v.author:
        raise MasterDataError(f"{what}: {user} imported (authored) this version; the approver must be another QA "
                              "person")
    from fillfinish.recipes.loader import loaded_from_text

    try:
        recipe = loaded_from_text(v.text, f"{name} v{version}", v.sha256).recipe
    except RecipeError as exc:
        raise MasterDataError(f"{what}: " + "; ".join(exc.problems)) from None
    problems = floor_problems(recipe, floor)
    if problems:
        raise MasterDataError(f"{what}: looser than the site floor: " + "; ".join(problems))
    append_registry(store, REGISTRY, "recipe_approved", {
        "name": name, "version": version, "sha256": v.sha256, "effective_from": effective_from.isoformat(),
        "site_floor": floor.model_dump(), "old": {"status": v.status}, "new": {"status": "approved"},
        "signature": signature(account, "approved", reason)}, account.username)
    return versions(store)[(name, version)]


def retire_recipe(store: RecordStore, name: str, version: int, user: str, password: str, reason: str) -> RecipeVersion:
    """QA retires a version: it may no longer run a batch."""
    what = f"retire recipe {name} v{version}"
    v = versions(store).get((name, version))
    if v is None:
        raise MasterDataError(f"{what}: not imported")
    if v.status == "retired":
        raise MasterDataError(f"{what}: already retired")
    if not reason.strip():
        raise MasterDataError(f"{what}: --reason is required")
    account = authenticate(store, user, password, APPROVER_ROLES, what)
    append_registry(store, REGISTRY, "recipe_retired", {
        "name": name, "version": version, "sha256": v.sha256, "reason": reason, "old": {"status": v.status},
        "new": {"status": "retired"}, "signature": signature(account, "retired", reason)}, account.username)
    return versions(store)[(name, version)]


def first_difference(approved: str, given: str, path: str, context: int = 1, max_lines: int = 8) -> str:
    """A compact unified diff (approved -> given) of the first differing lines, joined with ' | '."""
    diff = list(difflib.unified_diff(approved.splitlines(), given.splitlines(), "approved", path, n=context,
                                     lineterm=""))
    if not diff:
        return "the same lines, different bytes (line endings, whitespace or encoding)"
    body = [line for line in diff[2:] if not line.startswith("@@")][:max_lines]
    return " | ".join(body)


def effective_version(store: RecordStore, loaded: LoadedRecipe, today: dt.date) -> RecipeVersion:
    """The registry version this file is, if it is the approved, effective, current one; else a refusal naming why
    (unknown, draft, retired, superseded, not yet effective, or differing bytes with the difference)."""
    info = loaded.recipe.recipe
    all_versions = versions(store)
    label = f"recipe {info.name} version {info.version}"
    v = all_versions.get((info.name, info.version))
    if v is None:
        raise MasterDataError(f"{label} is not in the record; `fillfinish recipe import` and QA `recipe approve` "
                              "it first")
    if v.sha256 != loaded.sha256:
        raise MasterDataError(f"{loaded.path} differs from the {v.status} {label} (sha256 {loaded.sha256[:12]} != "
                              f"{v.sha256[:12]}): {first_difference(v.text, loaded.text, str(loaded.path))}")
    if v.status != "approved":
        raise MasterDataError(f"{label} is {v.status}, not approved by QA")
    assert v.effective_from is not None
    if v.effective_from > today:
        raise MasterDataError(f"{label} is approved but effective only from {v.effective_from}")
    current = [x for x in all_versions.values() if x.name == info.name and x.status == "approved"
               and x.effective_from is not None and x.effective_from <= today]
    newest = max(current, key=lambda x: x.version)
    if newest.version != v.version:
        raise MasterDataError(f"{label} is superseded by the effective version {newest.version}")
    return v
