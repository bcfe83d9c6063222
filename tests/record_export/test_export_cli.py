"""`fillfinish record export BATCH --format pdf|json|batchml --out FILE`: files written, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fillfinish.record import RecordStore
from fillfinish.record.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    """Run `record ...`; return (exit code, stdout, stderr), asserting it did not die of an exception."""
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("fmt", "magic"), [("pdf", b"%PDF-"), ("json", b"{"), ("batchml", b"<?xml")])
def test_export_formats(clean_record: tuple[RecordStore, str], fixture_url: str, tmp_path: Path, fmt: str,
                        magic: bytes) -> None:
    """Each format: exit 0, the file starts as it should, one line saying what was written."""
    _, batch = clean_record
    out = tmp_path / f"record.{fmt}"
    code, stdout, _ = invoke("export", batch, "--format", fmt, "--out", str(out), "--db", fixture_url)
    assert code == 0, stdout
    assert out.read_bytes().startswith(magic)
    assert f"{batch}: {fmt} export written to {out}" in stdout
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_export_errors(clean_record: tuple[RecordStore, str], fixture_url: str, tmp_path: Path) -> None:
    """Unknown batch, bad format, missing folder, folder as file, missing database: exit 1 with one clear line."""
    _, batch = clean_record
    out = str(tmp_path / "x.pdf")
    cases = [
        (("export", "B-19990101-0001", "--format", "pdf", "--out", out, "--db", fixture_url), "unknown batch"),
        (("export", batch, "--format", "docx", "--out", out, "--db", fixture_url), "allowed: pdf, json, batchml"),
        (("export", batch, "--format", "pdf", "--out", str(tmp_path / "no" / "x.pdf"), "--db", fixture_url),
         "does not exist"),
        (("export", batch, "--format", "json", "--out", str(tmp_path), "--db", fixture_url), "is a folder"),
        (("export", batch, "--format", "pdf", "--out", out, "--db", str(tmp_path / "missing.db")), "not found"),
    ]
    for args, message in cases:
        code, _, err = invoke(*args)
        assert code == 1, args
        assert err.startswith("error: ") and message in err, (args, err)
    assert not Path(out).exists()


def test_export_missing_option_is_a_usage_error(clean_record: tuple[RecordStore, str], fixture_url: str) -> None:
    """Without --out typer reports a usage error (exit 2)."""
    _, batch = clean_record
    code, _, _ = invoke("export", batch, "--format", "pdf", "--db", fixture_url)
    assert code == 2


def test_export_of_a_tampered_record_warns(clean_record: tuple[RecordStore, str], fixture_url: str, tmp_path: Path,
                                           tamper: object) -> None:
    """A tampered record is still exported (showing NOT INTACT) with a warning on stderr."""
    store, batch = clean_record
    tamper(store, "UPDATE entry SET kind = 'vial' WHERE batch_id = :b AND seq = 2", b=batch)  # type: ignore[operator]
    out = tmp_path / "r.json"
    code, _, err = invoke("export", batch, "--format", "json", "--out", str(out), "--db", fixture_url)
    assert code == 0 and "NOT INTACT" in err
    assert json.loads(out.read_text())["integrity"]["ok"] is False
