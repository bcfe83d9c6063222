"""Exports of one electronic batch record: JSON, PDF and ISA-88/95 BatchML, each with the review by exception.

`load_snapshot(store, batch_id)` reads the batch and verifies its hash chain; `render(snapshot, fmt)` gives the
bytes of one format; `export_batch(store, batch_id, fmt, out)` does both and writes the file atomically. The PDF and
BatchML modules (matplotlib, reportlab, lxml) are imported only when those formats are asked for. See docs/exports.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from fillfinish.record.chain import format_ts, parse_ts
from fillfinish.record.export.summary import (
    EXCEPTION_KINDS,
    Check,
    ExceptionItem,
    RecordSnapshot,
    ReviewSummary,
    Signature,
    load_snapshot,
    review,
)
from fillfinish.record.models import BatchHeader, Entry
from fillfinish.record.render import to_json
from fillfinish.record.store import RecordError

EXPORT_FORMATS: tuple[str, ...] = ("pdf", "json", "batchml")
"""Formats `render` and `export_batch` accept."""

JSON_EXPORT_FORMAT = "fillfinish-batch-record-export/1"
"""Identifier of the JSON export layout (the record part keeps render.JSON_FORMAT)."""


class ExportError(RecordError):
    """An export could not be made or written (bad format, unwritable file, invalid BatchML); the message says why."""


def integrity_dict(snap: RecordSnapshot) -> dict[str, Any]:
    """The verify result of the snapshot as JSON (batch chain and global ledger)."""
    result, ledger = snap.integrity, snap.ledger
    out: dict[str, Any] = {
        "verified": result is not None,
        "ok": None if result is None else result.ok,
        "entries_checked": None if result is None else result.entries_checked,
        "problem": None if result is None or result.problem is None else result.problem.describe(),
    }
    if ledger is not None:
        out["ledger"] = {
            "ok": ledger.ok,
            "rows_checked": ledger.rows_checked,
            "head": None if ledger.head is None else f"{ledger.head[0]}:{ledger.head[1]}",
            "problem": None if ledger.problem is None else ledger.problem.describe("row"),
        }
    return out


def json_document(snap: RecordSnapshot) -> dict[str, Any]:
    """The JSON export: the whole record (render.to_json), its verify result and the review by exception."""
    doc = to_json(snap.header, snap.entries)
    doc["export"] = {"format": JSON_EXPORT_FORMAT, "generated_at": format_ts(snap.generated_at)}
    doc["integrity"] = integrity_dict(snap)
    doc["review"] = review(snap).as_dict()
    return doc


def json_bytes(snap: RecordSnapshot) -> bytes:
    """The JSON export as UTF-8 bytes (indented, keys in record order)."""
    return (json.dumps(json_document(snap), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def from_json(doc: Mapping[str, Any]) -> tuple[BatchHeader, list[Entry]]:
    """Header and entries back from a JSON export (or `record show --json`), e.g. to re-verify the hashes offline.

    Raises ExportError naming the field when the document is not such an export.
    """
    try:
        b = doc["batch"]
        header = BatchHeader(
            batch_id=b["batch_id"], created_at=parse_ts(b["created_at"]), product=b["product"],
            product_code=b["product_code"], recipe_name=b["recipe_name"], recipe_version=b["recipe_version"],
            recipe_hash=b["recipe_hash"], recipe_snapshot=b["recipe_snapshot"], lot=b["lot"],
            planned_vials=b["planned_vials"], operator=b["operator"], mode=b["mode"], site_config=b["site_config"],
            header_hash=b["header_hash"],
        )
        entries = [
            Entry(batch_id=header.batch_id, seq=e["seq"], global_seq=e["global_seq"], ts=parse_ts(e["ts"]),
                  kind=e["kind"], actor=e["actor"], data=e["data"], prev_hash=e["prev_hash"], hash=e["hash"])
            for e in doc["entries"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"not a batch record JSON export: missing or bad field {exc}") from exc
    return header, entries


def render(snap: RecordSnapshot, fmt: str) -> bytes:
    """The bytes of one export format (EXPORT_FORMATS); ExportError for an unknown format or an invalid BatchML."""
    if fmt == "json":
        return json_bytes(snap)
    if fmt == "pdf":
        from fillfinish.record.export.pdf import pdf_bytes

        return pdf_bytes(snap)
    if fmt == "batchml":
        from fillfinish.record.export.batchml import batchml_bytes, validate

        data = batchml_bytes(snap)
        problems = validate(data)
        if problems:
            raise ExportError("the BatchML document does not validate against BatchML-BatchProductionRecord.xsd: "
                              + "; ".join(problems[:3]))
        return data
    raise ExportError(f"unknown export format {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename (no half-written export)."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder")
    refuse_non_regular(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # what open() would give a new file (mkstemp makes it 0600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc


def refuse_non_regular(path: Path) -> None:
    """ExportError if `path` exists and is not a regular file (a device, FIFO, socket or symbolic link is never
    replaced by an export)."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise ExportError(f"cannot write {path}: it is {kind}; an export only creates or replaces a regular file")


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def export_batch(store: Any, batch_id: str, fmt: str, out: Path, *, now: datetime | None = None) -> RecordSnapshot:
    """Export batch `batch_id` of `store` as `fmt` to the file `out`; return the snapshot that was exported."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; allowed: {', '.join(EXPORT_FORMATS)}")
    snap = load_snapshot(store, batch_id, now=now)
    write_atomically(Path(out), render(snap, fmt))
    return snap


__all__ = [
    "EXCEPTION_KINDS",
    "EXPORT_FORMATS",
    "JSON_EXPORT_FORMAT",
    "Check",
    "ExceptionItem",
    "ExportError",
    "RecordSnapshot",
    "ReviewSummary",
    "Signature",
    "export_batch",
    "from_json",
    "integrity_dict",
    "json_bytes",
    "json_document",
    "load_snapshot",
    "render",
    "review",
    "write_atomically",
]
