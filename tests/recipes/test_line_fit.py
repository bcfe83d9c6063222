"""Validation up front: a recipe that does not fit the configured syringe and pump is refused at `run` before any
device is touched; physically impossible config values are refused; errors keep bracketed names and stay one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fillfinish.config import ConfigError, load_site_config
from fillfinish.line_fit import recipe_fit_problems
from fillfinish.recipes.loader import load_recipe
from sim.plc import DEFAULT_NODES

REPO = Path(__file__).resolve().parents[2]


def site_text(syringe_ul: float = 1000.0, epoch: str = "1764085000.0", nodes: dict[str, str] | None = None) -> str:
    table = "\n".join(f'{k} = "{v}"' for k, v in sorted((nodes or DEFAULT_NODES).items()))
    return f"""[clock]
speed = 10.0
epoch = {epoch}

[dispenser]
port = "/nonexistent/pump"
address = "1"
protocol = "dt"
model = "xcalibur"
syringe_ul = {syringe_ul}

[balance]
port = "/nonexistent/balance"

[plc]
endpoint = "opc.tcp://127.0.0.1:9/fillfinish/plc"

[plc.nodes]
{table}

[database]
url = "sqlite:///unused.db"

[site]
aps_last_success = "2026-09-01"
aps_validity_days = 365
balance_check_valid_until = "2027-01-01"
lamp_warn_hours = 7000.0
lamp_max_hours = 8500.0
"""


def recipe_with(tmp_path: Path, **changes: str) -> Path:
    text = (REPO / "recipes" / "fgf2.toml").read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "variant.toml"
    path.write_text(text)
    return path


def test_fill_volume_larger_than_the_syringe_and_impossible_speeds(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(site_text())
    config = load_site_config(tmp_path / "site.toml")
    big = load_recipe(recipe_with(tmp_path, **{"fill_volume_ul = 100.0": "fill_volume_ul = 5000.0",
                                               "dispense_speed_ul_s = 80.0": "dispense_speed_ul_s = 5000.0"}))
    problems = recipe_fit_problems(big.recipe, config)
    assert any("fill_volume_ul: 5000 uL does not fit the configured 1000 uL syringe" in p for p in problems)
    assert any("dispense_speed_ul_s" in p and "allowed:" in p for p in problems)
    assert recipe_fit_problems(load_recipe(REPO / "recipes" / "fgf2.toml").recipe, config) == []


def test_run_refuses_a_recipe_that_does_not_fit_before_any_device(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(site_text())
    recipe = recipe_with(tmp_path, **{"fill_volume_ul = 100.0": "fill_volume_ul = 5000.0"})
    result = subprocess.run([sys.executable, "-m", "fillfinish", "run", "--config", str(tmp_path / "site.toml"),
                             "--recipe", str(recipe), "--lot", "L", "--vials", "10", "--operator", "op",
                             "--db", str(tmp_path / "r.db")], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 1
    assert "does not fit the configured 1000 uL syringe ([dispenser] syringe_ul)" in result.stderr, result.stderr
    assert "device" not in result.stderr and not (tmp_path / "r.db").exists(), "refused before record or devices"


def test_run_refuses_vials_outside_the_recipe_before_a_login_or_any_device(tmp_path: Path) -> None:
    """No password is asked (stdin stays empty) and no record is made for a batch size the recipe does not allow."""
    (tmp_path / "site.toml").write_text(site_text())
    result = subprocess.run([sys.executable, "-m", "fillfinish", "run", "--config", str(tmp_path / "site.toml"),
                             "--recipe", str(REPO / "recipes" / "fgf2.toml"), "--lot", "L", "--vials", "2500",
                             "--operator", "op", "--password-stdin", "--db", str(tmp_path / "r.db")],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, input="",
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--vials 2500 is outside the recipe's batch size; allowed: 10-2000 vials" in result.stderr
    assert "password" not in result.stderr.lower() and not (tmp_path / "r.db").exists()


def test_bracketed_names_survive_in_error_messages(tmp_path: Path) -> None:
    nodes = dict(DEFAULT_NODES)
    del nodes["lamp_hours"]
    (tmp_path / "site.toml").write_text(site_text(nodes=nodes))
    result = subprocess.run([sys.executable, "-m", "fillfinish", "batch", "recover", "--config",
                             str(tmp_path / "site.toml")], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "60"})
    assert result.returncode == 1 and "[plc.nodes]" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, "one line, however narrow the terminal"


@pytest.mark.parametrize("epoch", ["1e30", "-5.0"])
def test_clock_epoch_out_of_physical_range_is_refused(tmp_path: Path, epoch: str) -> None:
    (tmp_path / "site.toml").write_text(site_text(epoch=epoch))
    with pytest.raises(ConfigError, match="epoch"):
        load_site_config(tmp_path / "site.toml")


@pytest.mark.parametrize("where", ["missing/folder/site.toml", "."])
def test_sim_config_out_errors_are_one_line(tmp_path: Path, where: str) -> None:
    result = subprocess.run([sys.executable, "-m", "fillfinish", "sim", "--config-out", str(tmp_path / where)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 1 and "--config-out" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
