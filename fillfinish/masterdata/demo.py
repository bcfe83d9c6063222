"""Master data for `fillfinish demo` (and the tests): demo accounts with fresh random passwords, the recipe imported
and approved by a demo QA person, a trained and aseptically qualified operator, approved lots, a line cleaning and a
clearance by a second person. Everything goes through the same signed services as the real commands.

Only for the simulator: the demo accounts' passwords are random per call and never shown.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fillfinish.masterdata import cleaning, materials, recipes_control, training
from fillfinish.masterdata.signing import as_utc
from fillfinish.people.users import PeopleError, UserStore
from fillfinish.recipes.loader import load_recipe
from fillfinish.record.store import RecordStore

DEMO_PEOPLE = {"demo.author": ("supervisor", "Demo Recipe Author"), "demo.qa": ("qa", "Demo QA Approver"),
               "demo.trainer": ("supervisor", "Demo Trainer"), "demo.second": ("supervisor", "Demo Second Person")}


@dataclass
class Prepared:
    """What was prepared: the lots to start with and the passwords set (for tests that sign further)."""

    materials: dict[str, str]
    passwords: dict[str, str] = field(default_factory=dict)
    tip_lot: tuple[str, str, str] | None = None


def ensure_user(users: UserStore, name: str, role: str, full_name: str, password: str | None = None) -> str:
    """Create the account, or give an existing one a new password; returns the password in force."""
    password = password or f"demo-{secrets.token_urlsafe(12)}"
    try:
        users.get(name)
    except PeopleError:
        users.add(name, full_name, role, password, actor="demo")
        return password
    users.set_password(name, password, actor="demo")
    if users.get(name).locked:
        users.unlock(name, actor="demo", reason="demo master data")
    return password


def _people(users: UserStore, operator: str, operator_password: str | None,
            extra_people: dict[str, str] | None) -> dict[str, str]:
    """The demo accounts, the `extra_people` and the operator, each with the password in force (user id -> password)."""
    pw = {name: ensure_user(users, name, role, full) for name, (role, full) in DEMO_PEOPLE.items()}
    for name, role in (extra_people or {}).items():
        pw[name] = ensure_user(users, name, role, f"Demo {role} {name}")
    try:
        existing = users.get(operator)
        if operator_password is None:
            pw[operator] = ensure_user(users, operator, existing.role, existing.full_name)
        else:
            pw[operator] = operator_password
    except PeopleError:
        pw[operator] = ensure_user(users, operator, "operator", f"Demo Operator {operator}", operator_password)
    return pw


def prepare(store: RecordStore, recipe_paths: list[Path], operator: str, now: float | dt.datetime, *,
            line_id: str = "line-1", operator_password: str | None = None, planned_vials: int = 100_000,
            lot_prefix: str = "DEMO", tip: tuple[str, str, str] | None = None,
            extra_people: dict[str, str] | None = None) -> Prepared:
    """Make `operator` able to start every recipe in `recipe_paths` on `line_id` at `now` (the batch's clock);
    `tip` (lot, sterilisation cycle id, expiry YYYY-MM-DD) names the tips lot to receive instead of a generated one;
    `extra_people` (user id -> role) are further accounts to create (e.g. a supervisor who resumes a batch)."""
    pw = _people(UserStore(store), operator, operator_password, extra_people)
    today = as_utc(now).date()
    known = recipes_control.versions(store)
    stamp = as_utc(now).strftime("%Y%m%d%H%M%S")
    for path in recipe_paths:
        loaded = load_recipe(path)
        info = loaded.recipe.recipe
        v = known.get((info.name, info.version))
        if v is None:
            recipes_control.import_recipe(store, path, "demo.author", pw["demo.author"])
            v = recipes_control.versions(store)[(info.name, info.version)]
        if v.sha256 == loaded.sha256 and v.status == "draft":
            from fillfinish.masterdata.settings import SiteFloor

            recipes_control.approve_recipe(store, info.name, info.version, "demo.qa", pw["demo.qa"],
                                           effective_from=today - dt.timedelta(days=1), floor=SiteFloor(),
                                           reason="demo")
        training.add_training(store, operator, "recipe", info.name, today - dt.timedelta(days=30),
                              today + dt.timedelta(days=365), "demo.trainer", pw["demo.trainer"])
    training.add_training(store, operator, "gowning", "aseptic gowning", today - dt.timedelta(days=30),
                          today + dt.timedelta(days=365), "demo.trainer", pw["demo.trainer"])
    training.add_training(store, operator, "mediafill", f"APS-{lot_prefix}-seed", today - dt.timedelta(days=30),
                          today + dt.timedelta(days=335), "demo.trainer", pw["demo.trainer"])
    expiry = today + dt.timedelta(days=365)
    chosen: dict[str, str] = {}
    liquid_ml = max(1000.0, planned_vials * 50.0 + 100.0)  # enough for any recipe: fill <= 50 mL, prime <= 100 mL
    for kind, qty in (("bulk", liquid_ml), ("media", liquid_ml), ("vial", float(planned_vials)),
                      ("stopper", float(planned_vials)), ("tips", 1000.0)):
        lot = f"{lot_prefix}-{kind.upper()}-{stamp}-{secrets.token_hex(2)}"
        cycle, lot_expiry = f"EO-{stamp}", expiry
        if kind == "tips" and tip is not None:
            lot, cycle, lot_expiry = tip[0], tip[1], dt.date.fromisoformat(tip[2])
        materials.receive(store, lot=lot, material=kind, supplier="Demo Supplier", supplier_lot=f"S-{lot}",
                          quantity=qty, expiry=lot_expiry, certificate=f"CoA-{lot}", user="demo.trainer",
                          password=pw["demo.trainer"], animal_origin_free=True if kind in ("bulk", "media") else None,
                          concentration_mg_ml=0.1 if kind == "bulk" else None,
                          sterilisation_cycle_id=cycle if kind == "tips" else None)
        materials.decide(store, lot, True, "demo.qa", pw["demo.qa"], "demo")
        chosen[kind] = lot
    cleaning.record_cleaning(store, line_id, "SOP-CLEAN-001", f"AGENT-{stamp}", "demo.second", pw["demo.second"], now)
    cleaning.confirm_clearance(store, line_id, "demo.second", pw["demo.second"], "demo")
    tips = materials.lots(store)[chosen["tips"]]
    return Prepared(chosen, pw, (tips.lot, tips.sterilisation_cycle_id or "", tips.expiry.isoformat()))
