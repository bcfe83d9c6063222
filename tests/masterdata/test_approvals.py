"""Approval paths (issue 8 points 1 and 3): QA approves recipes (not the author) and material lots; a production
recipe looser than the site floor is refused; every change is a signed entry of a verified registry chain."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fillfinish.masterdata import MasterDataError, materials, recipes_control
from fillfinish.masterdata.demo import ensure_user
from fillfinish.masterdata.settings import SiteFloor
from fillfinish.people.users import UserStore
from fillfinish.record.registry import registry_entries
from fillfinish.record.store import RecordStore
from fillfinish.record.verify import verify

from masterdata_helpers import FGF2, START, SetClock

DAY = START.date()


@pytest.fixture
def people(db_url: str) -> tuple[RecordStore, dict[str, str]]:
    store = RecordStore(db_url, now=SetClock(START))
    users = UserStore(store)
    pw = {name: ensure_user(users, name, role, name) for name, role in
          (("qa.karin", "qa"), ("qa.lena", "qa"), ("sup.sven", "supervisor"), ("op.anna", "operator"))}
    yield store, pw
    store.close()


def variant(tmp_path: Path, name: str, *changes: tuple[str, str]) -> Path:
    """FGF-2 with text replaced (each `old` must occur)."""
    text = FGF2.read_text()
    for old, new in changes:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def test_qa_approves_a_draft_that_another_person_authored(people: tuple[RecordStore, dict[str, str]]) -> None:
    store, pw = people
    v = recipes_control.import_recipe(store, FGF2, "qa.karin", pw["qa.karin"])
    assert (v.status, v.author) == ("draft", "qa.karin")
    with pytest.raises(MasterDataError, match="imported \\(authored\\) this version; the approver must be another"):
        recipes_control.approve_recipe(store, "fgf2", 1, "qa.karin", pw["qa.karin"], effective_from=DAY,
                                       floor=SiteFloor())
    with pytest.raises(MasterDataError, match="sup.sven has role supervisor; allowed: qa"):
        recipes_control.approve_recipe(store, "fgf2", 1, "sup.sven", pw["sup.sven"], effective_from=DAY,
                                       floor=SiteFloor())
    v = recipes_control.approve_recipe(store, "fgf2", 1, "qa.lena", pw["qa.lena"], effective_from=DAY,
                                       floor=SiteFloor(), reason="validated")
    assert (v.status, v.approved_by, v.effective_from) == ("approved", "qa.lena", DAY)
    approval = registry_entries(store, "recipes", kinds=["recipe_approved"])[0]
    assert approval.data["signature"]["meaning"] == "approved" and approval.data["sha256"] == v.sha256
    with pytest.raises(MasterDataError, match="only a draft can be approved"):
        recipes_control.approve_recipe(store, "fgf2", 1, "qa.lena", pw["qa.lena"], effective_from=DAY,
                                       floor=SiteFloor())
    assert verify(store).ok


def test_an_operator_cannot_import_and_a_version_is_never_overwritten(people: tuple[RecordStore, dict[str, str]],
                                                                      tmp_path: Path) -> None:
    store, pw = people
    with pytest.raises(MasterDataError, match="op.anna has role operator"):
        recipes_control.import_recipe(store, FGF2, "op.anna", pw["op.anna"])
    recipes_control.import_recipe(store, FGF2, "sup.sven", pw["sup.sven"])
    with pytest.raises(MasterDataError, match="already imported"):
        recipes_control.import_recipe(store, FGF2, "sup.sven", pw["sup.sven"])
    edited = variant(tmp_path, "fgf2.toml", ("dispense_speed_ul_s = 80.0", "dispense_speed_ul_s = 90.0"))
    with pytest.raises(MasterDataError, match="already imported with another content.*raise \\[recipe\\] version"):
        recipes_control.import_recipe(store, edited, "sup.sven", pw["sup.sven"])


@pytest.mark.parametrize(("changes", "floor", "expected"), [
    ((("tolerance_percent = 2.0 ", "tolerance_percent = 20.0"),), SiteFloor(),
     "fill tolerance \\+/-20 % is wider than the site maximum \\+/-5 %"),
    ((('method = "uv_and_presterilised"', 'method = "uv"'), ("require_presterilised_lot = true",
                                                              "require_presterilised_lot = false")), SiteFloor(),
     "cell therapy grade needs a pre-sterilised tip lot"),
    ((), SiteFloor(particles_0_5um_action_max_per_m3=3000.0),
     "particles_0_5um_action_per_m3 3520 is above the site floor 3000"),
])
def test_a_production_recipe_looser_than_the_site_floor_is_refused(
        people: tuple[RecordStore, dict[str, str]], tmp_path: Path, changes: tuple[tuple[str, str], ...],
        floor: SiteFloor, expected: str) -> None:
    store, pw = people
    recipes_control.import_recipe(store, variant(tmp_path, "x.toml", *changes), "sup.sven", pw["sup.sven"])
    with pytest.raises(MasterDataError, match=f"looser than the site floor: .*{expected}"):
        recipes_control.approve_recipe(store, "fgf2", 1, "qa.karin", pw["qa.karin"], effective_from=DAY, floor=floor)
    assert recipes_control.versions(store)[("fgf2", 1)].status == "draft"


def test_material_lots_are_quarantined_until_qa_decides(people: tuple[RecordStore, dict[str, str]]) -> None:
    store, pw = people
    args = dict(material="bulk", supplier="Acme", supplier_lot="A-1", quantity=50.0, expiry=DAY + dt.timedelta(days=90),
                certificate="CoA-1", animal_origin_free=True)
    with pytest.raises(MasterDataError, match="protein bulk needs --concentration"):
        materials.receive(store, lot="FGF2-0042", user="op.anna", password=pw["op.anna"], **args)
    lot = materials.receive(store, lot="FGF2-0042", user="op.anna", password=pw["op.anna"],
                            concentration_mg_ml=0.5, **args)
    assert lot.status == "quarantine" and lot.received_by == "op.anna"
    with pytest.raises(MasterDataError, match="lot ids are never reused"):
        materials.receive(store, lot="FGF2-0042", user="op.anna", password=pw["op.anna"], concentration_mg_ml=0.5,
                          **args)
    with pytest.raises(MasterDataError, match="has role supervisor; allowed: qa"):
        materials.decide(store, "FGF2-0042", True, "sup.sven", pw["sup.sven"])
    with pytest.raises(MasterDataError, match="--reason is required"):
        materials.decide(store, "FGF2-0042", False, "qa.karin", pw["qa.karin"])
    lot = materials.decide(store, "FGF2-0042", True, "qa.karin", pw["qa.karin"], "CoA reviewed")
    assert (lot.status, lot.decided_by) == ("approved", "qa.karin")
    assert verify(store).ok
