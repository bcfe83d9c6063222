"""Pure parts of the controller server: command names/numbers and the tag values of one snapshot."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fillfinish.control import StatusView
from fillfinish.server import COMMAND_NUMBERS, STATUS_TAGS, ControllerServer, command_name, status_tags


def test_command_numbers_follow_packml() -> None:
    assert COMMAND_NUMBERS == {"Reset": 1, "Start": 2, "Stop": 3, "Hold": 4, "Unhold": 5, "Suspend": 6,
                               "Unsuspend": 7, "Abort": 8, "Clear": 9, "Complete": 10}


@pytest.mark.parametrize("given, expected", [(4, "Hold"), ("hold", "Hold"), (" 10 ", "Complete"), ("ABORT", "Abort")])
def test_command_name_accepts_numbers_and_names(given: object, expected: str) -> None:
    assert command_name(given) == expected


@pytest.mark.parametrize("given", [0, 11, "Launch", "", True, None, 4.0])
def test_command_name_rejects_with_allowed_list(given: object) -> None:
    with pytest.raises(ValueError, match=r"allowed: Reset \(1\)"):
        command_name(given)


def test_status_tags_cover_every_tag_but_runtime_ones() -> None:
    tags = status_tags(StatusView(state=6, state_name="Execute", unit_mode=4, batch_id=None, product=None, phase=None))
    assert set(tags) == set(STATUS_TAGS) - {"LastCommandResult", "StatusError", "Heartbeat", "SecurityEvents"}
    assert tags["UnitModeCurrentName"] == "Media fill (APS)"
    assert tags["BatchId"] == "" and tags["Alarms"] == "[]" and tags["Environment"] == "{}"


def test_bad_constructor_arguments_are_clear(controller: Any, tmp_path: Any) -> None:
    from fillfinish.server import ServerSecurity

    security = ServerSecurity(pki_dir=tmp_path, users=None)  # type: ignore[arg-type] - never used here
    with pytest.raises(ValueError, match="update_interval_s"):
        ControllerServer(controller, security=security, update_interval_s=0)
    with pytest.raises(ValueError, match="port must be 0..65535"):
        ControllerServer(controller, security=security, port=70000)


def test_role_table_is_documented() -> None:
    """docs/security.md shows the role table exactly as fillfinish/command_roles.py defines it."""
    from pathlib import Path

    from fillfinish.command_roles import role_table_markdown

    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    assert role_table_markdown() in doc


def test_tag_payloads_are_json(controller: Any, make_alarm: Any) -> None:
    controller.alarms = [make_alarm(3)]
    tags = status_tags(controller.status())
    assert json.loads(tags["Alarms"])[0]["message"].startswith("HEPA dp")
    assert tags["ValidCommands"] == "Reset,Abort"
