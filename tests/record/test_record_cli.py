"""`fillfinish record verify|show|list` through typer's CliRunner: exit codes and messages, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fillfinish.record import RecordStore
from fillfinish.record.cli import DEFAULT_DB_URL, app, resolve_db_url
from record_helpers import StepClock, fill, new_batch, tamper

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, str, str]:
    """A SQLite record with two batches: (url, batch A with 5 entries, batch B with 2)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with RecordStore(url, now=StepClock()) as store:
        a = new_batch(store)
        fill(store, a, 5)
        store.append(a, "alarm", {"severity": "alert", "source": "hepa_dp_pa", "message": "low", "value": 3.2, "limit": "low"}, "monitor")
        b = new_batch(store, mode="media_fill", lot="MF-01")
        fill(store, b, 2)
    return url, a, b


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the app; return (exit code, stdout, stderr) and check it did not die of an exception."""
    result = runner.invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_verify_intact(db: tuple[str, str, str]) -> None:
    """An intact record: exit 0, one line per batch and the ledger."""
    url, a, b = db
    code, out, _ = invoke("verify", "--db", url)
    assert code == 0
    assert f"{a}: intact (6 entries)" in out and f"{b}: intact (2 entries)" in out
    assert "ledger: intact (10 rows, head 10:" in out and "record intact" in out
    code, out, _ = invoke("verify", a, "--db", url)
    assert code == 0 and b not in out


def test_verify_names_the_first_bad_entry(db: tuple[str, str, str]) -> None:
    """A tampered record: exit 1, naming batch, seq, entry kind and problem kind."""
    url, a, b = db
    with RecordStore(url) as store:
        tamper(store, "UPDATE entry SET actor = 'mallory' WHERE batch_id = :b AND seq IN (3, 4)", params={"b": a})
    code, out, err = invoke("verify", "--db", url)
    assert code == 1
    assert f"{a}: NOT INTACT: entry 3 (vial): changed" in out
    assert f"{b}: intact" in out
    assert "RECORD NOT INTACT" in err
    code, out, _ = invoke("show", a, "--db", url)
    assert code == 0 and "Integrity      NOT INTACT: entry 3 (vial): changed" in out


def test_verify_with_anchor(db: tuple[str, str, str]) -> None:
    """--anchor GLOBAL_SEQ:HASH is checked; a malformed anchor is a usage error (exit 2)."""
    url, _, _ = db
    with RecordStore(url) as store:
        head = store.verify().ledger.head
    assert head is not None
    assert invoke("verify", "--db", url, "--anchor", f"{head[0]}:{head[1]}")[0] == 0
    code, out, _ = invoke("verify", "--db", url, "--anchor", f"{head[0] + 5}:{head[1]}")
    assert code == 1 and "ledger: NOT INTACT: row 15: removed" in out
    code, _, err = invoke("verify", "--db", url, "--anchor", "ten:abc")
    assert code == 2 and "GLOBAL_SEQ:SHA256" in err


def test_unknown_batch_is_a_clear_error(db: tuple[str, str, str]) -> None:
    """verify/show of an unknown batch: exit 1, the id, and the known batches."""
    url, a, _ = db
    for command in ("verify", "show"):
        code, _, err = invoke(command, "B-20990101-0001", "--db", url)
        assert code == 1
        assert "unknown batch 'B-20990101-0001'" in err and a in err


def test_show_text_and_json(db: tuple[str, str, str]) -> None:
    """show prints the header and one line per entry; --json gives the whole record plus its integrity."""
    url, a, _ = db
    code, out, _ = invoke("show", a, "--db", url)
    assert code == 0
    assert f"BATCH RECORD {a}  (production)" in out
    assert "Lot            L-2611-07" in out
    lines = [line for line in out.splitlines() if line.strip().startswith(("1 ", "6 "))]
    assert "vial" in lines[0] and 'net_g=0.5 reason="in tolerance" status=accepted vial=1' in lines[0]
    assert "alarm" in lines[1] and "monitor" in lines[1] and "source=hepa_dp_pa" in lines[1]
    assert "Integrity      intact (6 entries verified)" in out
    code, out, _ = invoke("show", a, "--db", url, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["batch"]["batch_id"] == a and doc["batch"]["site_config"]["clock"]["speed"] == 1.0
    assert [e["seq"] for e in doc["entries"]] == [1, 2, 3, 4, 5, 6]
    assert doc["entries"][5]["data"] == {"severity": "alert", "source": "hepa_dp_pa", "message": "low", "value": 3.2, "limit": "low"}
    assert doc["integrity"] == {"ok": True, "entries_checked": 6, "problem": None}


def test_list(db: tuple[str, str, str]) -> None:
    """list shows each batch with its mode, entry count and lot."""
    url, a, b = db
    code, out, _ = invoke("list", "--db", url)
    assert code == 0
    row_a = next(line for line in out.splitlines() if line.startswith(a))
    row_b = next(line for line in out.splitlines() if line.startswith(b))
    assert "production" in row_a and " 6 " in row_a and "L-2611-07" in row_a
    assert "media_fill" in row_b and " 2 " in row_b and "MF-01" in row_b


def test_db_from_environment(db: tuple[str, str, str]) -> None:
    """FILLFINISH_DB is used when --db is not given."""
    url, a, _ = db
    code, out, _ = invoke("list", env={"FILLFINISH_DB": url})
    assert code == 0 and a in out


@pytest.mark.parametrize(
    ("db_value", "message"),
    [
        ("sqlite:///{tmp}/missing.db", "database file not found"),
        ("{tmp}/missing.db", "database file not found"),
        ("nonsense://", "unsupported database 'nonsense'"),
        ("://nohost", "not a database URL"),
        ("postgresql+psycopg://u@h:port/db", "not a database URL"),
        ("sqlite:///{tmp}/empty.db", "no batch record in"),
    ],
)
def test_bad_database_is_a_clear_error(tmp_path: Path, db_value: str, message: str) -> None:
    """Missing file, bad URL, a database without a record: exit 1 with a message; no file is created."""
    (tmp_path / "empty.db").write_bytes(b"")
    value = db_value.format(tmp=tmp_path)
    for command in (["list"], ["verify"], ["show", "B-1"]):
        code, _, err = invoke(*command, "--db", value)
        assert code == 1, (command, err)
        assert message in err
    assert not (tmp_path / "missing.db").exists()


def test_empty_record(tmp_path: Path) -> None:
    """A record with no batches verifies and lists as empty."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    RecordStore(url).close()
    code, out, _ = invoke("verify", "--db", url)
    assert code == 0 and "no batches" in out
    code, out, _ = invoke("list", "--db", url)
    assert code == 0 and "no batches" in out


def test_resolve_db_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """--db beats $FILLFINISH_DB beats the default; a bare path is a SQLite file."""
    monkeypatch.delenv("FILLFINISH_DB", raising=False)
    assert resolve_db_url(None) == DEFAULT_DB_URL
    monkeypatch.setenv("FILLFINISH_DB", "postgresql+psycopg://u@h/db")
    assert resolve_db_url(None) == "postgresql+psycopg://u@h/db"
    assert resolve_db_url("sqlite:///x.db") == "sqlite:///x.db"
    assert resolve_db_url("/var/lib/ff/record.db") == "sqlite:////var/lib/ff/record.db"
    assert resolve_db_url("rel.db") == "sqlite:///rel.db"


def test_verify_without_the_key_says_what_it_could_not_check(db: tuple[str, str, str], tmp_path: Path) -> None:
    """With --key naming a missing file verify still checks the chains, exits 0 for an intact record, and says plainly
    that the MACs, signature proofs and witness were not checked."""
    url, _, _ = db
    code, out, _ = invoke("verify", "--db", url, "--key", str(tmp_path / "elsewhere.sitekey"))
    assert code == 0 and "NOT CHECKED: no site key" in out and "signature proofs" in out
    assert "record intact as far as it can be checked without the site key" in out
    code, out, _ = invoke("verify", "--db", url)  # the key of the test ($FILLFINISH_SITE_KEY)
    assert code == 0 and "NOT CHECKED" not in out and out.rstrip().endswith("record intact")


def test_verify_names_a_cut_off_newest_entry(db: tuple[str, str, str]) -> None:
    """Deleting the newest entry and its ledger row: verify exits 1 naming the witness, no anchor needed."""
    url, _, b = db
    with RecordStore(url, create=False) as store:
        tamper(store, "DELETE FROM entry WHERE batch_id = :b AND seq = 2",
               "DELETE FROM ledger WHERE batch_id = :b AND seq = 2", params={"b": b})
    code, out, _ = invoke("verify", "--db", url)
    assert code == 1 and "ledger: NOT INTACT: row 10: removed: the newest rows of line line-1 were cut off" in out


def test_site_init_creates_the_key_once(tmp_path: Path) -> None:
    """`fillfinish site init --key FILE` creates the key (0600) and shows its fingerprint; a second run keeps it."""
    from fillfinish.record.site_cli import app as site_app
    from fillfinish.record.sitekey import read_key

    path = tmp_path / "keys" / "site.sitekey"
    result = runner.invoke(site_app, ["init", "--key", str(path), "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 0 and f"site key created: {path} (fingerprint {read_key(path).fingerprint})" in \
        result.output
    again = runner.invoke(site_app, ["init", "--key", str(path)])
    assert again.exit_code == 0 and "already exists" in again.output
    assert (path.stat().st_mode & 0o777) == 0o600
