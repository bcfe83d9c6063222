"""The signal table against decision 0001, [plc.nodes] validation, and value typing on arbitrary input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.plc import SIGNALS, PlcConfigError, PlcDriver, PlcError, validate_nodes
from hal.plc.driver import _coerce
from hal.plc.signals import subscribed_signals
from sim.plc import DEFAULT_NODES

DECISION = Path(__file__).resolve().parents[2] / "docs" / "decisions" / "0001-layout-and-contracts.md"


def table_rows() -> list[tuple[list[str], str]]:
    """(names, access) of each row of 0001's PLC signal table."""
    text = DECISION.read_text(encoding="utf-8")
    section = text.split("## PLC signals", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("name", "---"):
            rows.append(([n.strip() for n in cells[0].split(",")], cells[2]))
    return rows


def test_signal_names_match_decision_0001() -> None:
    rows = table_rows()
    names = [n for row_names, _ in rows for n in row_names]
    assert sorted(names) == sorted(SIGNALS)
    subscribed = [n for row_names, access in rows if "subscribed" in access for n in row_names]
    assert sorted(subscribed) == sorted(subscribed_signals())


def test_simulator_default_nodes_are_complete() -> None:
    validate_nodes(DEFAULT_NODES)
    assert DEFAULT_NODES["lamp_command"] == "ns=2;s=UV.LampCommand"


def test_missing_and_unknown_names_are_listed() -> None:
    nodes = dict(DEFAULT_NODES)
    del nodes["lamp_hours"], nodes["door_closed"]
    nodes["lamp_colour"] = "ns=2;s=UV.Colour"
    with pytest.raises(PlcConfigError) as info:
        validate_nodes(nodes)
    message = str(info.value)
    assert "missing signal(s): lamp_hours, door_closed" in message
    assert "unknown signal(s): 'lamp_colour'" in message and "allowed:" in message


@pytest.mark.parametrize("bad", ["UV.LampCommand", "ns=x;s=UV", "", 42])
def test_malformed_node_id_is_named(bad: Any) -> None:
    with pytest.raises(PlcConfigError, match="lamp_command"):
        validate_nodes(dict(DEFAULT_NODES, lamp_command=bad))


def test_driver_refuses_bad_config_before_connecting() -> None:
    with pytest.raises(PlcConfigError, match="missing signal"):
        PlcDriver("opc.tcp://127.0.0.1:4840/x", {"lamp_command": "ns=2;s=UV.LampCommand"})
    with pytest.raises(PlcConfigError, match="must be a table"):
        validate_nodes(["lamp_command"])  # type: ignore[arg-type]


@given(st.dictionaries(st.text(max_size=30), st.one_of(st.text(max_size=40), st.integers(), st.none())))
def test_validate_nodes_on_arbitrary_input(nodes: dict[str, Any]) -> None:
    try:
        validate_nodes(nodes)
    except PlcConfigError:
        pass


@given(st.sampled_from(sorted(n for n, s in SIGNALS.items() if s.type is not None and s.access != "method")),
       st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(), st.none(), st.binary(),
                 st.lists(st.integers(), max_size=3)))
def test_coerce_types_or_raises_plc_error(signal: str, value: Any) -> None:
    try:
        typed = _coerce(signal, value)
    except PlcError:
        return
    assert type(typed) is SIGNALS[signal].type
