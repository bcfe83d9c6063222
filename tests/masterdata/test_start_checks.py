"""The checks before a batch starts (issue 8 point 7): every refusal names what is missing, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fillfinish.masterdata import MasterDataError, cleaning, materials, recipes_control, training
from fillfinish.masterdata.settings import SiteFloor
from fillfinish.masterdata.start_checks import StartRefused, commit_start
from fillfinish.recipes.loader import load_recipe
from fillfinish.record.registry import append_registry
from fillfinish.record.verify import verify

from masterdata_helpers import FGF2, MEDIA_FILL, START, World, site


def test_prepared_master_data_allow_the_start_and_are_recorded(world: World) -> None:
    decision = world.check()
    rec = decision.record
    assert rec["recipe"]["name"] == "fgf2" and rec["recipe"]["version"] == 1
    assert rec["recipe"]["sha256"] == world.fgf2.sha256 and rec["recipe"]["approved_by"] == "demo.qa"
    assert set(rec["materials"]) == {"bulk", "vial", "stopper", "tips"}
    assert rec["line_clearance"]["by"] == "demo.second" and rec["cleaning"]["procedure"] == "SOP-CLEAN-001"
    assert "site setting" in rec["aps"]["source"]
    assert decision.tip_lot is not None and decision.tip_lot[0] == world.prepared.materials["tips"]
    commit_start(world.store, decision, "L-1", world.operator)
    with pytest.raises(StartRefused, match="no line clearance .* since the last batch"):
        world.check()
    assert verify(world.store).ok


def test_a_recipe_file_edited_by_one_byte_is_refused_with_the_difference(world: World, tmp_path: Path) -> None:
    edited = tmp_path / "fgf2.toml"
    edited.write_text(FGF2.read_text().replace("fill_volume_ul = 100.0", "fill_volume_ul = 101.0"))
    with pytest.raises(StartRefused) as refused:
        world.check(load_recipe(edited))
    message = str(refused.value)
    assert "differs from the approved recipe fgf2 version 1" in message
    assert "-fill_volume_ul = 100.0" in message and "+fill_volume_ul = 101.0" in message
    assert "\n" not in message


def test_a_draft_or_retired_recipe_does_not_run(world: World, tmp_path: Path) -> None:
    v2 = tmp_path / "fgf2-v2.toml"
    v2.write_text(FGF2.read_text().replace("version = 1", "version = 2"))
    recipes_control.import_recipe(world.store, v2, "demo.author", world.pw("demo.author"))
    with pytest.raises(StartRefused, match="recipe fgf2 version 2 is draft, not approved"):
        world.check(load_recipe(v2))
    recipes_control.approve_recipe(world.store, "fgf2", 2, "demo.qa", world.pw("demo.qa"),
                                   effective_from=START.date() + dt.timedelta(days=3), floor=SiteFloor())
    with pytest.raises(StartRefused, match="effective only from"):
        world.check(load_recipe(v2))
    world.clock.advance(days=3)
    with pytest.raises(StartRefused, match="superseded by the effective version 2"):
        world.check()
    recipes_control.retire_recipe(world.store, "fgf2", 2, "demo.qa", world.pw("demo.qa"), "replaced")
    with pytest.raises(StartRefused, match="version 2 is retired"):
        world.check(load_recipe(v2))


def test_an_unqualified_operator_is_refused_naming_the_training(world: World) -> None:
    with pytest.raises(StartRefused) as refused:
        world.check(operator="op.bert")
    message = str(refused.value)
    assert "operator op.bert has no valid training on recipe fgf2" in message
    assert "operator op.bert has no valid training on gowning" in message
    assert "no passing media-fill participation" in message


def test_training_that_lapsed_is_named(world: World) -> None:
    world.clock.advance(days=366)
    with pytest.raises(StartRefused, match=r"no valid training on recipe fgf2 \(lapsed"):
        world.check(materials={})


def test_a_lapsed_operator_media_fill_is_refused(world: World) -> None:
    world.site = site(operator_aps_period_days=20)  # the prepared participation is 30 days old
    with pytest.raises(StartRefused, match="op.anna's aseptic qualification lapsed"):
        world.check()


def test_an_expired_tip_lot_is_refused(world: World) -> None:
    tips = "T-TIPS-OLD"
    materials.receive(world.store, lot=tips, material="tips", supplier="S", supplier_lot="S1", quantity=10,
                      expiry=START.date() - dt.timedelta(days=1), certificate="C", user="demo.trainer",
                      password=world.pw("demo.trainer"), sterilisation_cycle_id="EO-1")
    materials.decide(world.store, tips, True, "demo.qa", world.pw("demo.qa"))
    with pytest.raises(StartRefused, match=f"tips lot {tips} expired on"):
        world.check(materials={**world.prepared.materials, "tips": tips})


def test_a_rejected_vial_lot_is_refused(world: World) -> None:
    lot = "T-VIAL-BAD"
    materials.receive(world.store, lot=lot, material="vial", supplier="S", supplier_lot="S1", quantity=1000,
                      expiry=START.date() + dt.timedelta(days=100), certificate="C", user="demo.trainer",
                      password=world.pw("demo.trainer"))
    with pytest.raises(StartRefused, match=f"vial lot {lot} is in quarantine, not approved by QA"):
        world.check(materials={**world.prepared.materials, "vial": lot})
    materials.decide(world.store, lot, False, "demo.qa", world.pw("demo.qa"), "cracked necks")
    with pytest.raises(StartRefused, match=f"vial lot {lot} is rejected by QA"):
        world.check(materials={**world.prepared.materials, "vial": lot})
    with pytest.raises(MasterDataError, match="already rejected"):
        materials.decide(world.store, lot, True, "demo.qa", world.pw("demo.qa"))


def test_a_bulk_lot_too_small_for_the_batch_is_refused(world: World) -> None:
    """The bulk lot must hold every fill volume plus the prime; a consumed lot counts only what is left."""
    lot = "T-BULK-SMALL"
    materials.receive(world.store, lot=lot, material="bulk", supplier="S", supplier_lot="S1", quantity=1.0,
                      expiry=START.date() + dt.timedelta(days=100), certificate="C", user="demo.trainer",
                      password=world.pw("demo.trainer"), animal_origin_free=True, concentration_mg_ml=0.1,
                      product_code=world.fgf2.recipe.recipe.product_code)
    materials.decide(world.store, lot, True, "demo.qa", world.pw("demo.qa"))
    with pytest.raises(StartRefused, match=f"bulk lot {lot} has 1 mL left, .* mL needed \\(24 vials x"):
        world.check(materials={**world.prepared.materials, "bulk": lot})


def test_a_wrong_material_or_a_missing_lot_is_refused(world: World) -> None:
    chosen = {**world.prepared.materials, "vial": world.prepared.materials["stopper"]}
    chosen.pop("bulk")
    with pytest.raises(StartRefused) as refused:
        world.check(materials=chosen)
    assert "is stopper, not vial (wrong material)" in str(refused.value)
    assert "no bulk lot given (--material bulk=LOT)" in str(refused.value)


def test_missing_or_old_cleaning_is_refused(db_url: str) -> None:
    from fillfinish.masterdata.demo import prepare
    from fillfinish.record.store import RecordStore

    from masterdata_helpers import SetClock

    clock = SetClock(START)
    with RecordStore(db_url, now=clock) as store:
        prepared = prepare(store, [FGF2], "op.anna", clock(), line_id="line-7")
        world = World(store, clock, prepared, load_recipe(FGF2), site())  # the checks look at line-1
        with pytest.raises(StartRefused) as refused:
            world.check()
        assert "no cleaning of line line-1 is recorded" in str(refused.value)
        assert "no line clearance of line line-1" in str(refused.value)
        world.site = site(line_id="line-7")
        world.check()
        clock.advance(hours=73)
        with pytest.raises(StartRefused, match="last cleaning of line line-7 .* is older than 72 h"):
            world.check()


def test_line_clearance_by_the_operator_themself_is_refused(world: World) -> None:
    cleaning.confirm_clearance(world.store, "line-1", "op.anna", world.pw("op.anna"))
    with pytest.raises(StartRefused, match="confirmed by the operator op.anna themself; a second person"):
        world.check()


def test_a_lapsed_media_fill_stops_production_but_not_a_media_fill(world: World) -> None:
    old = (START - dt.timedelta(days=200)).isoformat()
    append_registry(world.store, "mediafill", "mediafill_result", {
        "batch_id": "B-APS-1", "line_id": "line-1", "passed": True, "operators": ["op.anna"], "result_at": old},
        "qa.other")
    with pytest.raises(StartRefused, match=r"line line-1's APS lapsed on .*media fill B-APS-1"):
        world.check()
    world.check(load_recipe(MEDIA_FILL), materials={**world.prepared.materials})
    recent = (START - dt.timedelta(days=10)).isoformat()
    append_registry(world.store, "mediafill", "mediafill_result", {
        "batch_id": "B-APS-2", "line_id": "line-1", "passed": True, "operators": ["op.anna"], "result_at": recent},
        "qa.other")
    assert world.check().record["aps"]["source"].startswith("media fill B-APS-2")


def test_without_a_media_fill_the_site_setting_carries_the_qualification(world: World) -> None:
    world.site = site(aps_last_success=START.date() - dt.timedelta(days=200))
    with pytest.raises(StartRefused, match=r"APS lapsed .*site setting \[site\] aps_last_success"):
        world.check()
    world.site = site(aps_seed_date=START.date() - dt.timedelta(days=10))
    assert "aps_seed_date" in world.check().record["aps"]["source"]


def test_training_signed_by_the_trainee_or_an_operator_is_refused(world: World) -> None:
    day = START.date()
    with pytest.raises(MasterDataError, match="cannot sign their own training"):
        training.add_training(world.store, "demo.trainer", "gowning", "", day, day, "demo.trainer",
                              world.pw("demo.trainer"))
    with pytest.raises(MasterDataError, match="has role operator; allowed: supervisor, qa"):
        training.add_training(world.store, "op.bert", "gowning", "", day, day, "op.anna", world.pw("op.anna"))
    with pytest.raises(MasterDataError, match="unknown user or wrong password"):
        training.add_training(world.store, "op.bert", "gowning", "", day, day, "demo.trainer", "wrong password")


def test_the_record_approval_counts_not_the_files_status_text(world: World, tmp_path: Path) -> None:
    draft = tmp_path / "fgf2-v3.toml"
    text = FGF2.read_text().replace("version = 1", "version = 3").replace('status = "approved"', 'status = "draft"')
    draft.write_text(text.replace('approved_by = "qa.lindqvist"\n', "").replace("approved_on = 2026-11-20\n", ""))
    recipes_control.import_recipe(world.store, draft, "demo.author", world.pw("demo.author"))
    recipes_control.approve_recipe(world.store, "fgf2", 3, "demo.qa", world.pw("demo.qa"),
                                   effective_from=START.date(), floor=SiteFloor())
    training.add_training(world.store, "op.anna", "recipe", "fgf2", START.date(), START.date(), "demo.trainer",
                          world.pw("demo.trainer"))
    assert world.check(load_recipe(draft)).record["recipe"]["version"] == 3


def test_an_optional_lot_given_is_checked_and_recorded(world: World) -> None:
    lot = "T-CAP-1"
    materials.receive(world.store, lot=lot, material="cap", supplier="S", supplier_lot="S1", quantity=500,
                      expiry=START.date() + dt.timedelta(days=100), certificate="C", user="demo.trainer",
                      password=world.pw("demo.trainer"))
    with pytest.raises(StartRefused, match=f"cap lot {lot} is in quarantine"):
        world.check(materials={**world.prepared.materials, "cap": lot})
    materials.decide(world.store, lot, True, "demo.qa", world.pw("demo.qa"))
    assert world.check(materials={**world.prepared.materials, "cap": lot}).record["materials"]["cap"]["lot"] == lot
