"""The one exception -> exit-code table of the command line (fillfinish/cli_errors.py): 1 with a one-line message for
what a person may cause, 128 + N after signal N, and a bug keeps its traceback (it is not dressed as a refusal)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fillfinish.cli_batch import batch_app
from fillfinish.cli_errors import _table, describe, reported
from fillfinish.errors import UserError
from fillfinish.lock import RecordBusy
from fillfinish.machine.packml import CommandRefused
from fillfinish.record.store import RecordOpenError
from fillfinish.shutdown import ShutdownBySignal
from hal.dispenser.errors import PumpTimeout


@pytest.mark.parametrize(("exc", "code", "label"), [
    (UserError("recipe.toml: fill.fill_volume_ul: too big; allowed: at most 1000 uL"), 1, "error:"),
    (RecordBusy("line line-1 on this batch record is in use by pid 1"), 1, "error:"),
    (RecordOpenError("no record at x.db"), 1, "record:"),
    (PumpTimeout("no answer in 2 s"), 1, "device:[/] PumpTimeout: no answer"),
    (ValueError("vials: 0 outside the recipe's limits"), 1, "refused:"),
    (ShutdownBySignal(signal.SIGTERM, "SIGTERM: line in its safe state"), 128 + signal.SIGTERM, "stopped:"),
    (KeyboardInterrupt(), 1, "interrupted"),
])
def test_what_a_person_may_cause_is_one_line_and_an_exit_code(exc: BaseException, code: int, label: str) -> None:
    mapped = describe(exc)
    assert mapped is not None
    assert mapped[0] == code and label in mapped[1] and "\n" not in mapped[1]


def test_a_refused_packml_command_is_a_refusal() -> None:
    refusals = [types for types, label, _ in _table() if label == "refused:"]
    assert any(CommandRefused in types for types in refusals)


def test_a_bug_keeps_its_traceback() -> None:
    assert describe(RuntimeError("bug")) is None
    with pytest.raises(RuntimeError):
        with reported():
            raise RuntimeError("bug")
    with pytest.raises(typer.Exit) as exit_:
        with reported():
            raise UserError("bad input")
    assert exit_.value.exit_code == 1


def test_batch_status_on_a_missing_record_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(batch_app, ["status", "--db", f"sqlite:///{tmp_path / 'none.db'}"])
    assert result.exit_code == 1 and "record:" in result.output and "Traceback" not in result.output
