"""Consumers that read the record typed (decision 0017) keep doing so: no `entry.data["x"]` / `.data.get("x")` string
reads in them; a renamed field then fails at type-check and test time, not silently in an export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TYPED_CONSUMERS = (
    "fillfinish/batch/history.py",
    "fillfinish/batch/disposition.py",
    "fillfinish/batch/recovery.py",
    "fillfinish/record/export/summary.py",
    "fillfinish/record/export/review_checks.py",
    "fillfinish/record/export/review_exceptions.py",
    "fillfinish/record/export/review_quality.py",
    "fillfinish/record/export/plots.py",
    "fillfinish/record/export/batchml.py",
    "fillfinish/record/export/batchml_views.py",
    "fillfinish/record/export/pdf.py",
    "fillfinish/quality/release.py",
    "fillfinish/quality/viable.py",
    "fillfinish/quality/purge.py",
    "fillfinish/quality/mediafill.py",
    "fillfinish/quality/deviations.py",
    "fillfinish/quality/cli_results.py",
    "fillfinish/quality/cli_qa.py",
    "fillfinish/quality/cli_deviations.py",
    "fillfinish/quality/cli_record.py",
    "fillfinish/masterdata/aps.py",
    "fillfinish/masterdata/cleaning.py",
    "fillfinish/masterdata/cli.py",
    "fillfinish/masterdata/demo.py",
    "fillfinish/masterdata/materials.py",
    "fillfinish/masterdata/recipes_control.py",
    "fillfinish/masterdata/settings.py",
    "fillfinish/masterdata/signing.py",
    "fillfinish/masterdata/start_checks.py",
    "fillfinish/masterdata/training.py",
    "fillfinish/people/trail.py",
    "fillfinish/people/signatures.py",
    "fillfinish/people/cli.py",
)
"""Modules that read entries typed. BatchML and the PDF also print every field of an entry exactly as written (the
hashed raw data, `canonical_json(entry.data)` / `data_text(entry.data)`): a whole-data dump, not a field read."""
STRING_READ = re.compile(r"""\.data\s*(\[\s*["']|\.get\(\s*["'])|\b(d|data)\.get\(\s*["']|\bd\[\s*["']"""
                         r"""|\bsignature\s*(\[\s*["']|\.get\(\s*["'])""")
"""`entry.data["x"]`, `.data.get("x")`, `d["x"]`, `d.get("x")`, and a signature manifestation read by key
(`signature["user_id"]`: read it as fillfinish.record.typed_registry.Signer)."""


@pytest.mark.parametrize("path", TYPED_CONSUMERS)
def test_no_string_keyed_reads_of_entry_data(path: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    hits = [f"{path}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if STRING_READ.search(line)]
    assert not hits, "read entries typed (fillfinish.record.vocabulary.typed), not by string key:\n" + "\n".join(hits)
