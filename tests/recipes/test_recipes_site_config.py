"""Site config: the layout of decision 0001 loads; bad values get "FILE: field: message; allowed: ..."."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fillfinish.config import ConfigError, SiteConfig, load_site_config

GOOD = """\
[clock]
speed = 1.0
epoch = 1764085000.0

[dispenser]
port = "/dev/pts/5"
address = "1"
baudrate = 9600
protocol = "dt"
model = "xcalibur"
syringe_ul = 1000.0
resolution = "N0"

[balance]
port = "/dev/pts/6"
baudrate = 9600

[plc]
endpoint = "opc.tcp://127.0.0.1:48400/fillfinish/plc"
security = "None"
[plc.nodes]
lamp_command = "ns=2;s=UV.LampCommand"
lamp_hours = "ns=2;i=1001"

[database]
url = "sqlite:///fillfinish.db"

[site]
aps_last_success = "2026-06-01"
aps_validity_days = 365
balance_check_valid_until = 2027-01-31
lamp_warn_hours = 7000.0
lamp_max_hours = 8500.0
"""


def _write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_site_config(path)
    assert all(p.startswith(f"{path}: ") and "; allowed: " in p for p in info.value.problems), info.value.problems
    return info.value.problems


def test_good_config_loads(tmp_path: Path) -> None:
    config = load_site_config(_write(tmp_path, GOOD))
    assert isinstance(config, SiteConfig)
    assert config.clock.speed == 1.0 and config.clock.epoch == 1764085000.0
    assert config.dispenser.address == "1" and config.dispenser.model == "xcalibur"
    assert config.plc.nodes["lamp_command"] == "ns=2;s=UV.LampCommand"
    assert config.site.aps_last_success == datetime.date(2026, 6, 1)
    assert config.site.balance_check_valid_until == datetime.date(2027, 1, 31)
    assert config.site.aps_valid_until() == datetime.date(2027, 6, 1)


def test_clock_section_is_optional(tmp_path: Path) -> None:
    text = GOOD.replace("[clock]\nspeed = 1.0\nepoch = 1764085000.0\n", "")
    assert load_site_config(_write(tmp_path, text)).clock.speed == 1.0


@pytest.mark.parametrize(("old", "new", "field", "allowed"), [
    ('address = "1"', 'address = "A"', "dispenser.address", "1..9 or :"),
    ('address = "1"', 'address = ":"', None, None),
    ('address = "1"', 'address = "?"', None, None),
    ('protocol = "dt"', 'protocol = "ascii"', "dispenser.protocol", "'dt', 'oem'"),
    ('model = "xcalibur"', 'model = "xp3000"', "dispenser.model", "'xcalibur', 'xlp6000'"),
    ('resolution = "N0"', 'resolution = "N2"', "dispenser.resolution", "'N0', 'N1'"),
    ("syringe_ul = 1000.0", "syringe_ul = 0", "dispenser.syringe_ul", "> 0"),
    ("speed = 1.0", "speed = -2.0", "clock.speed", "> 0"),
    ("speed = 1.0\nepoch = 1764085000.0", "speed = 100.0", "clock.epoch", "Unix time"),
    ('endpoint = "opc.tcp://127.0.0.1:48400/fillfinish/plc"', 'endpoint = "http://plc"', "plc.endpoint",
     "opc.tcp://"),
    ('security = "None"', 'security = "Basic128"', "plc.security", "Basic256Sha256_SignAndEncrypt"),
    ('security = "None"', 'security = "Basic256Sha256_SignAndEncrypt"', "plc.certificate", "path"),
    ('security = "None"', 'security = "None"\nusername = "op"', "plc.password", "both username and password"),
    ('lamp_command = "ns=2;s=UV.LampCommand"', 'lamp_command = "UV.LampCommand"', "plc.nodes.lamp_command",
     "OPC UA node id"),
    ('url = "sqlite:///fillfinish.db"', 'url = "mysql://db"', "database.url", "SQLAlchemy URL"),
    ("aps_validity_days = 365", "aps_validity_days = 0", "site.aps_validity_days", ">= 1"),
    ('aps_last_success = "2026-06-01"', 'aps_last_success = "June"', "site.aps_last_success", "YYYY-MM-DD"),
    ("lamp_warn_hours = 7000.0", "lamp_warn_hours = 9000.0", "site.lamp_warn_hours", "lamp_max_hours"),
    ("baudrate = 9600\nprotocol", "baudrate = 9601\nprotocol", "dispenser.baudrate", "9600"),
    ("[database]", "[database]\npool = 3", "database.pool", "url"),
    ("[site]", "[sites]\n[site]", "sites", "[site]"),
])
def test_field_checks(tmp_path: Path, old: str, new: str, field: str | None, allowed: str | None) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    if field is None:
        load_site_config(path)
        return
    matching = [p for p in _problems(path) if p.startswith(f"{path}: {field}: ")]
    assert matching
    assert allowed in matching[0].partition("; allowed: ")[2]


def test_security_with_key_files(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "client.der").write_bytes(b"cert")
    (tmp_path / "pki" / "client.pem").write_bytes(b"key")
    text = GOOD.replace('security = "None"', 'security = "Basic256Sha256_SignAndEncrypt"\n'
                        'certificate = "pki/client.der"\nprivate_key = "pki/client.pem"\n'
                        'username = "fillfinish"\npassword = "secret"')
    config = load_site_config(_write(tmp_path, text))
    assert config.plc.certificate == tmp_path / "pki" / "client.der"
    assert config.plc.private_key == tmp_path / "pki" / "client.pem"
    (tmp_path / "pki" / "client.pem").unlink()
    problems = _problems(tmp_path / "site.toml")
    assert problems[0].startswith(f"{tmp_path / 'site.toml'}: plc.private_key: file not found")


def test_missing_section_and_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.split("[site]")[0])
    problems = _problems(path)
    assert any(p.startswith(f"{path}: site: missing section [site]") for p in problems)
    empty = _write(tmp_path, "  \n", "empty.toml")
    assert _problems(empty)[0].startswith(f"{empty}: file: file is empty")


def test_broken_toml_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace('port = "/dev/pts/6"', "port = /dev/pts/6"))
    assert _problems(path)[0].startswith(f"{path}: line 15, column 8: not valid TOML")


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=1000))
def test_arbitrary_bytes_give_a_config_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "site.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError):
        load_site_config(path)
