"""`fillfinish run` with the checks before start (issue 8): a refusal names what is missing and creates nothing; a
batch that starts records its recipe approval, lots, cleaning, clearance and APS, reconciles its vials, and the
BatchML export carries the lots as MaterialActual."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fillfinish.record.export import load_snapshot
from fillfinish.record.export.batchml import batchml_bytes, validate
from fillfinish.record.store import RecordStore
from fillfinish.record.verify import verify
from sim.runner import Simulator

from masterdata_fixture import seed_master_data

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FF = [sys.executable, "-m", "fillfinish"]


def ff(*args: str, input: str = "") -> subprocess.CompletedProcess[str]:  # noqa: A002 - subprocess's name
    return subprocess.run([*FF, *args], capture_output=True, text=True, timeout=240, cwd=REPO, input=input,
                          env={**os.environ, "COLUMNS": "200"})


def test_run_refuses_without_lots_then_records_the_master_data_of_the_batch(simulator: Simulator,
                                                                             tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    site = simulator.write_site_config(tmp_path / "site.toml", db)
    expiry = (dt.date.today() + dt.timedelta(days=300)).isoformat()
    seeded = seed_master_data(db, site, [REPO / "recipes" / "fgf2.toml"], "op.anna", tip=("TL-5", "EO-5", expiry))
    base = ["run", "--config", str(site), "--recipe", str(REPO / "recipes" / "fgf2.toml"), "--lot", "L-MD",
            "--vials", "10", "--operator", "op.anna", "--no-progress", "--password-stdin"]

    refused = ff(*base, "--tip-lot", "TL-5", input=seeded.stdin_text)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "may not start" in refused.stderr and "no bulk lot given" in refused.stderr
    assert "no vial lot given" in refused.stderr
    bad = ff(*base, "--material", "vial", input=seeded.stdin_text)
    assert bad.returncode == 1 and "KIND=LOT" in bad.stderr
    with RecordStore(db, create=False) as store:
        assert store.batches() == [], "nothing started"

    ok = ff(*base, "--tip-lot", "TL-5", *seeded.material_args, input=seeded.stdin_text)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with RecordStore(db, create=False) as store:
        (header,) = store.batches()
        (start,) = store.entries(header.batch_id, kinds=["master_data"])
        (rec,) = store.entries(header.batch_id, kinds=["material_reconciliation"])
        assert verify(store).ok
        snap = load_snapshot(store, header.batch_id)
    assert start.data["recipe"]["approved_by"] == "demo.qa" and start.data["recipe"]["sha256"] == header.recipe_hash
    assert start.data["materials"]["tips"]["lot"] == "TL-5"
    assert start.data["line_clearance"]["by"] == "demo.second"
    assert rec.data["vials"] == {"lot": seeded.prepared.materials["vial"], "issued": 10, "used": 10, "rejected": 0,
                                 "returned": 0, "balanced": True}
    assert rec.data["bulk"]["lot"] == seeded.prepared.materials["bulk"] and rec.data["bulk"]["drawn_ml"] > 0
    document = batchml_bytes(snap)
    assert validate(document) == []
    assert b"<MaterialLotID>TL-5</MaterialLotID>" in document

    again = ff(*base, "--tip-lot", "TL-5", *seeded.material_args, input=seeded.stdin_text)
    assert again.returncode == 1 and "no line clearance of line line-1 since the last batch" in again.stderr
