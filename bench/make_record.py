"""Build a batch record of N entries with valid chains, fast, for timing `record verify` (issue 11 point 3).

The rows are computed with the record's own hash functions (chain.header_hash, chain.entry_hash_text,
chain.line_ledger_hash) and keyed with the site key exactly as RecordStore writes them (sitekey.ledger_mac_message),
then inserted in bulk (executemany on SQLite, COPY on PostgreSQL) instead of one commit per entry. The witness of
the line's head is written beside the key, so verify checks it as for a record written by the store.

Run: python -m bench.make_record --entries 1000000 --db sqlite:///big.db [--key FILE] [--per-batch 230]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from fillfinish.record.chain import (  # noqa: E402
    GENESIS_LEDGER_HASH,
    canonical_json,
    entry_hash_text,
    format_ts,
    header_hash,
    line_ledger_hash,
)
from fillfinish.record.sitekey import SiteKey, ledger_mac_message  # noqa: E402
from fillfinish.record.store import RecordStore  # noqa: E402
from fillfinish.record.witness import Witness, database_identity, witness_path  # noqa: E402

ENTRY_COLUMNS = ("batch_id", "seq", "global_seq", "ts", "kind", "actor", "data", "prev_hash", "hash")
LEDGER_COLUMNS = ("global_seq", "batch_id", "seq", "record_hash", "prev_hash", "hash", "line_id", "line_seq",
                  "key_id", "mac")
HEADER_COLUMNS = ("batch_id", "created_at", "product", "product_code", "recipe_name", "recipe_version",
                  "recipe_hash", "recipe_snapshot", "lot", "planned_vials", "operator", "mode", "site_config",
                  "header_hash")


def _batches(entries: int, per_batch: int, key: SiteKey, line_id: str, start_ts: float
             ) -> Iterator[tuple[tuple[object, ...], list[tuple[object, ...]], list[tuple[object, ...]]]]:
    """(header row, entry rows, ledger rows) of each batch, in write order, for `entries` entries in all."""
    from datetime import UTC, datetime

    key_id = key.fingerprint
    line_seq, lprev, written, number = 0, GENESIS_LEDGER_HASH, 0, 0
    while written < entries:
        number += 1
        batch_id = f"B-20260101-{number:06d}"
        created = format_ts(datetime.fromtimestamp(start_ts + written, UTC))
        fields = {"batch_id": batch_id, "created_at": created, "product": "Bench product", "product_code": "BENCH",
                  "recipe_name": "bench", "recipe_version": "1", "recipe_hash": "ab" * 32,
                  "recipe_snapshot": "[recipe]\nname = \"bench\"\n", "lot": f"L-{number}",
                  "planned_vials": per_batch, "operator": "bench.operator", "mode": "production",
                  "site_config": {"bench": True}}
        hhash = header_hash(fields)
        header = tuple(canonical_json(fields["site_config"]) if c == "site_config" else
                       (hhash if c == "header_hash" else fields[c]) for c in HEADER_COLUMNS)
        entry_rows: list[tuple[object, ...]] = []
        ledger_rows: list[tuple[object, ...]] = []

        def ledger(seq: int, record_hash: str) -> int:
            """Append the ledger row of (batch_id, seq); return its line_seq (= global_seq here)."""
            nonlocal line_seq, lprev
            line_seq += 1
            digest = line_ledger_hash(lprev, line_id=line_id, line_seq=line_seq, batch_id=batch_id, seq=seq,
                                      record_hash=record_hash)
            mac = key.mac(ledger_mac_message(line_id=line_id, line_seq=line_seq, ledger_hash=digest, key_id=key_id))
            ledger_rows.append((line_seq, batch_id, seq, record_hash, lprev, digest, line_id, line_seq, key_id, mac))
            lprev = digest
            return line_seq

        ledger(0, hhash)
        prev = hhash
        count = min(per_batch, entries - written)
        for seq in range(1, count + 1):
            ts = format_ts(datetime.fromtimestamp(start_ts + written + seq * 0.001, UTC))
            data = canonical_json({"vial": seq, "net_g": round(0.5 + seq / 10000, 6), "status": "accepted"})
            digest = entry_hash_text(prev, batch_id=batch_id, seq=seq, ts=ts, kind="vial", actor="system",
                                     data_text=data)
            global_seq = ledger(seq, digest)
            entry_rows.append((batch_id, seq, global_seq, ts, "vial", "system", data, prev, digest))
            prev = digest
        written += count
        yield header, entry_rows, ledger_rows


def build(url: str, entries: int, *, per_batch: int = 230, key: str | None = None, line_id: str = "line-1",
          chunk: int = 20_000) -> dict[str, object]:
    """Create the record at `url` (which must be empty) with `entries` entries; return what was built."""
    store = RecordStore(url, key=key, line_id=line_id)
    raw = None
    try:
        key_path = store.key_path
        site_key = store.site_key(create=True)
        assert site_key is not None
        dialect = store.dialect
        raw = store.engine.raw_connection()
        conn = raw.driver_connection
        started = time.perf_counter()
        buffers: dict[str, list[tuple[object, ...]]] = {"batch": [], "entry": [], "ledger": []}
        tables = (("batch", HEADER_COLUMNS), ("entry", ENTRY_COLUMNS), ("ledger", LEDGER_COLUMNS))

        def flush() -> None:
            """Write the buffered rows in one transaction."""
            if dialect == "sqlite":
                conn.execute("BEGIN")
                for table, columns in tables:
                    if buffers[table]:
                        conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                         f"({', '.join('?' for _ in columns)})", buffers[table])
                conn.execute("COMMIT")
            else:
                with conn.transaction(), conn.cursor() as cur:
                    for table, columns in tables:
                        if buffers[table]:
                            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                                for row in buffers[table]:
                                    copy.write_row(row)
            for rows in buffers.values():
                rows.clear()

        if dialect == "postgresql":
            conn.autocommit = True
        batches, last = 0, (0, GENESIS_LEDGER_HASH, "")
        for header, entry_rows, ledger_rows in _batches(entries, per_batch, site_key, line_id, 1_767_225_600.0):
            buffers["batch"].append(header)
            buffers["entry"].extend(entry_rows)
            buffers["ledger"].extend(ledger_rows)
            batches += 1
            row = ledger_rows[-1]
            last = (int(row[7]), str(row[5]), str(row[9]))  # type: ignore[call-overload]
            if len(buffers["ledger"]) >= chunk:
                flush()
        flush()
        if dialect == "postgresql":
            conn.execute(f"SELECT setval('ledger_global_seq', {last[0] + 1}, false)")
        if key_path is not None:
            witness = Witness(witness_path(key_path, database_identity(store._raw_url), line_id), line_id)  # noqa: SLF001
            witness.mark(*last)
            witness.close()
    finally:
        if raw is not None:
            raw.close()
        store.close()
    return {"entries": entries, "batches": batches, "ledger_rows": last[0], "seconds": round(time.perf_counter() -
                                                                                          started, 2),
            "key": str(key_path)}


def main() -> None:
    """Parse the arguments, build, print one line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, required=True, help="entries to write (e.g. 1000000)")
    parser.add_argument("--db", required=True, help="database URL or SQLite file path (must be a new record)")
    parser.add_argument("--key", default=None, help="site key file (default as for the record commands)")
    parser.add_argument("--per-batch", type=int, default=230, help="entries per batch (default 230)")
    parser.add_argument("--line-id", default="line-1", help="line id of the ledger (default line-1)")
    args = parser.parse_args()
    if args.entries < 1 or args.per_batch < 1:
        parser.error("--entries and --per-batch must be >= 1")
    url = args.db if "://" in args.db else f"sqlite:///{args.db}"
    info = build(url, args.entries, per_batch=args.per_batch, key=args.key, line_id=args.line_id)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
