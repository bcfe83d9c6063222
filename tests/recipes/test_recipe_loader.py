"""Recipe files: the shipped recipes validate; every bad file gets a message naming file, field and what is allowed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from fillfinish.recipes import LoadedRecipe, Recipe, RecipeError, load_recipe, validate_files

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "recipes").glob("*.toml"))
BAD = Path(__file__).resolve().parent / "bad"


def test_the_four_recipes_are_shipped() -> None:
    assert {p.name for p in SHIPPED} == {"fgf2.toml", "tgf-beta1.toml", "il2.toml", "media-fill.toml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_recipe_is_valid_and_approved(path: Path) -> None:
    loaded = load_recipe(path)
    assert isinstance(loaded, LoadedRecipe)
    assert loaded.recipe.approved
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.text == path.read_text(encoding="utf-8")
    assert loaded.path == path
    assert loaded.recipe.recipe.name == path.stem
    env = loaded.recipe.environment
    assert env.particles_0_5um_action_per_m3 <= 3520 and env.particles_5um_action_per_m3 <= 29
    assert 100 <= loaded.recipe.uv.target_dose_mj_cm2 <= 400


def test_shipped_numbers() -> None:
    by_name = {p.stem: load_recipe(p).recipe for p in SHIPPED}
    assert by_name["fgf2"].fill.fill_volume_ul == 100.0
    assert by_name["fgf2"].fill.tolerance_abs_ul == pytest.approx(2.0)
    assert by_name["fgf2"].fill.expected_net_g == pytest.approx(0.100)
    assert by_name["fgf2"].fill.tolerance_g == pytest.approx(0.002)
    assert by_name["tgf-beta1"].fill.fill_volume_ul == 50.0
    assert by_name["il2"].fill.fill_volume_ul == 250.0
    media = by_name["media-fill"]
    assert media.recipe.mode == "media_fill" and media.fill.fill_volume_ul == 500.0
    assert all(r.recipe.mode == "production" for n, r in by_name.items() if n != "media-fill")


# (fixture, field named in the message, a fragment of what is wrong, a fragment of what is allowed)
CASES = [
    ("empty.toml", "file", "file is empty", "[recipe]"),
    ("not-utf8.toml", "line 3, column 23", "not UTF-8", "UTF-8 text"),
    ("broken.toml", "line 4, column 10", "not valid TOML", "key = value"),
    ("wrong-type.toml", "fill.fill_volume_ul", "not a number (got '100 uL'", "a number > 0"),
    ("out-of-range.toml", "fill.density_g_ml", "must be <= 1.5", ">= 0.9 and <= 1.5"),
    ("unknown-field.toml", "uv.max_cycle_time_s", "unknown field", "max_cycle_s"),
    ("missing-field.toml", "hold_times.fill_duration_max_s", "missing required field", "seconds"),
    ("alert-ge-action.toml", "environment.particles_0_5um_alert_per_m3", "not below the action limit",
     "< particles_0_5um_action_per_m3"),
    ("action-above-annex1.toml", "environment.particles_5um_action_per_m3", "must be <= 29", "<= 29"),
    ("draft-with-approval.toml", "recipe.approved_by", "set although status = 'draft'", "no approval fields"),
    ("draft-with-approval.toml", "recipe.approved_on", "set although status = 'draft'", "no approval fields"),
    ("approved-without-approver.toml", "recipe.approved_by", "missing although status = 'approved'", "approver"),
    ("two-tolerances.toml", "fill.tolerance_percent", "exactly one", "not both"),
    ("uv-without-tip-dose.toml", "tips.uv_target_dose_mj_cm2", "missing although method", "mJ/cm2"),
    ("every-nth-one.toml", "check_weigh.every_nth", "must be >= 2", ">= 2"),
    ("dose-unreachable.toml", "uv.max_cycle_s", "too short", "max_cycle_s >= 1000"),
    ("not-a-table.toml", "fill", "not a table", "fill_volume_ul"),
    ("not-a-table.toml", "uv", "missing section [uv]", "target_dose_mj_cm2"),
]


@pytest.mark.parametrize(("name", "field", "wrong", "allowed"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_bad_file_message(name: str, field: str, wrong: str, allowed: str) -> None:
    path = BAD / name
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    err = info.value
    assert err.path == path
    assert all(p.startswith(f"{path}: ") and "; allowed: " in p for p in err.problems), err.problems
    matching = [p for p in err.problems if p.startswith(f"{path}: {field}: ")]
    assert matching, err.problems
    what, _, allowed_text = matching[0].partition("; allowed: ")
    assert wrong in what
    assert allowed in allowed_text
    assert str(err) == "\n".join(err.problems)


def test_every_bad_fixture_is_rejected() -> None:
    results = validate_files(sorted(BAD.glob("*.toml")))
    assert results and all(problems for _, problems in results)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    for path, fragment in ((tmp_path / "nope.toml", "file not found"), (tmp_path, "is a directory")):
        with pytest.raises(RecipeError) as info:
            load_recipe(path)
        assert info.value.problems == [p for p in info.value.problems if p.startswith(f"{path}: file: {fragment}")]


def test_validate_files_mixes_good_and_bad() -> None:
    results = validate_files([SHIPPED[0], BAD / "empty.toml"])
    assert results[0] == (SHIPPED[0], [])
    assert results[1][0] == BAD / "empty.toml" and results[1][1]


def test_hash_changes_when_one_byte_changes(tmp_path: Path) -> None:
    copy = tmp_path / "fgf2.toml"
    shutil.copy(ROOT / "recipes" / "fgf2.toml", copy)
    before = load_recipe(copy).sha256
    assert load_recipe(copy).sha256 == before  # same bytes, same hash
    copy.write_bytes(copy.read_bytes().replace(b"# FGF-2", b"# FGF-3", 1))  # a comment: same recipe, new bytes
    after = load_recipe(copy)
    assert after.sha256 != before
    assert after.recipe == load_recipe(ROOT / "recipes" / "fgf2.toml").recipe


def test_byte_order_mark_is_accepted_and_hashed(tmp_path: Path) -> None:
    copy = tmp_path / "bom.toml"
    data = b"\xef\xbb\xbf" + (ROOT / "recipes" / "il2.toml").read_bytes()
    copy.write_bytes(data)
    assert load_recipe(copy).sha256 == hashlib.sha256(data).hexdigest()


def test_check_weigh_plan_picks_first_last_and_every_nth() -> None:
    plan = load_recipe(ROOT / "recipes" / "fgf2.toml").recipe.check_weigh
    weighed = [i for i in range(1, 26) if plan.weighs(i, 25)]
    assert weighed == [1, 11, 21, 25]


def test_recipe_is_immutable() -> None:
    recipe: Recipe = load_recipe(SHIPPED[0]).recipe
    with pytest.raises(ValidationError):
        recipe.fill.fill_volume_ul = 1.0  # type: ignore[misc]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_give_a_recipe_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "r.toml"
    path.write_bytes(data)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert info.value.problems and all(p.startswith(f"{path}: ") for p in info.value.problems)


_toml_scalars = st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=20), st.dates())
_sections = st.sampled_from(["recipe", "fill", "uv", "tips", "hold_times", "check_weigh", "environment", "x"])


@settings(max_examples=200, deadline=None)
@given(doc=st.dictionaries(_sections, st.one_of(_toml_scalars, st.dictionaries(st.text(min_size=1, max_size=30),
                                                                              _toml_scalars, max_size=8))))
def test_arbitrary_documents_give_a_recipe_error(tmp_path_factory: pytest.TempPathFactory, doc: dict) -> None:
    lines: list[str] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines.extend(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        else:
            lines.insert(0, f"{key} = {_value(value)}")
    path = tmp_path_factory.mktemp("docs") / "r.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RecipeError):
        load_recipe(path)


def _key(k: str) -> str:
    return json.dumps(k, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, str):
        return _key(v)
    return str(v)


FGF2_BYTES = (ROOT / "recipes" / "fgf2.toml").read_bytes()


@settings(max_examples=300, deadline=None)
@given(pos=st.integers(0, len(FGF2_BYTES) - 1), byte=st.integers(0, 255))
def test_one_changed_byte_gives_a_recipe_or_a_recipe_error(
    tmp_path_factory: pytest.TempPathFactory, pos: int, byte: int
) -> None:
    data = FGF2_BYTES[:pos] + bytes([byte]) + FGF2_BYTES[pos + 1:]
    path = tmp_path_factory.mktemp("mutant") / "r.toml"
    path.write_bytes(data)
    try:
        loaded = load_recipe(path)
    except RecipeError as exc:
        assert exc.problems
    else:
        assert (loaded.sha256 == hashlib.sha256(FGF2_BYTES).hexdigest()) == (data == FGF2_BYTES)


def test_deeply_nested_toml_is_a_recipe_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(RecipeError):
        load_recipe(path)
