"""The record's own speed: RecordStore.append against a raw commit, `record verify` at a million entries, and four
lines appending at once to one PostgreSQL database (issue 11 points 2, 3, 5).

- `RecordStore.append alone` vs `raw SQLite commit (WAL, FULL)`: the same disk, the same durability (one committed
  transaction per entry, WAL, synchronous=FULL), measured in alternating blocks so load changes hit both alike.
- with --pg URL: the same on PostgreSQL (raw: one autocommitted INSERT per row, synchronous commit), and four
  writer processes, each its own line id, appending at once vs one writer alone (per-line rate); every chain and
  ledger is verified afterwards and the entry counts checked (nothing lost or interleaved). Beside it, four raw
  psycopg committers at once vs one alone on the same server: the ceiling this machine puts on several lines.
- `record verify`: bench/make_record.py builds N entries (default 1,000,000; --verify-entries for quick runs), then
  `fillfinish record verify` runs in its own process; wall time, entries/s and peak memory (the process and its
  workers) beside a raw read of every entry row with one SHA-256 each.
  The record is built once under the temp folder (fillfinish-bench-verify-N/) and reused by later runs.
Run: python -m bench.bench_record [--n 2000] [--pg URL] [--verify-entries 1000000] [--verify-cache DIR] [--dir DIR]
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.common import REPO, Figure, base_parser, positive_int, print_figures, print_table, quiet_logging, \
    write_figures
from fillfinish.record.store import RecordStore

BATCH = dict(product="bench", product_code="BENCH", recipe_name="bench", recipe_version="1", recipe_hash="0" * 64,
             recipe_snapshot="bench", lot="L-BENCH", planned_vials=1, operator="bench", mode="production",
             site_config={"bench": True})
DATA = {"vial": 1, "net_g": 0.5012, "status": "accepted", "reason": ""}


def raw_sqlite_connection(path: Path) -> sqlite3.Connection:
    """Plain sqlite3 in WAL with synchronous=FULL and a one-table schema (id, ts, data), autocommit mode."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, data TEXT NOT NULL)")
    return conn


def raw_sqlite_commits(conn: sqlite3.Connection, n: int) -> float:
    """Commits/s of `n` rows as large as an entry, one per BEGIN IMMEDIATE ... COMMIT."""
    rows = [entry_sized_row(i) for i in range(n)]
    t0 = time.perf_counter()
    for row in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (ts, data) VALUES (?, ?)", row)
        conn.execute("COMMIT")
    return n / (time.perf_counter() - t0)


class RecordRowsSql:
    """The record's own rows of one append (its ledger row and entry row, with the store's own statements and
    pragmas) written by plain sqlite3 or psycopg with precomputed values: no Python of ours, no hashing. Beside the
    raw one-row commit it shows what the record's schema alone costs; beside RecordStore.append, what our Python
    adds (bench/README.md)."""

    def __init__(self, batch_id: str, line_id: str) -> None:
        """Rows for `batch_id` (created by a store, so its header and ledger row exist) on line `line_id`."""
        self.batch_id, self.line_id, self.seq = batch_id, line_id, 0
        self._prepared = False  # pg_commits' statement, prepared on its first call

    def rows(self, n: int) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        """n (ledger values, entry values) for the next n sequence numbers (the entry's global_seq left out)."""
        out = []
        for _ in range(n):
            self.seq += 1
            ts = f"2026-12-01T12:00:00.{self.seq % 1_000_000:06d}Z"
            data = json.dumps(dict(DATA, vial=self.seq), sort_keys=True, separators=(",", ":"))
            digest = f"{self.seq:064x}"
            ledger = (self.batch_id, self.seq, digest, "a" * 64, f"{self.seq:064d}", self.line_id, self.seq, "k" * 16,
                      "m" * 64)
            out.append((ledger, (self.batch_id, self.seq, ts, "vial", "system", data, "p" * 64, digest)))
        return out

    def sqlite_commits(self, conn: sqlite3.Connection, n: int) -> float:
        """Commits/s: BEGIN IMMEDIATE, the ledger row, the entry row, COMMIT (the store's SQLite transaction)."""
        from fillfinish.record.write_path import _LEDGER_INSERT, _SQLITE_ENTRY_INSERT

        rows = self.rows(n)
        t0 = time.perf_counter()
        for ledger, entry in rows:
            conn.execute("BEGIN IMMEDIATE")
            global_seq = conn.execute(_LEDGER_INSERT["sqlite"], ledger).fetchone()[0]
            conn.execute(_SQLITE_ENTRY_INSERT, (*entry[:2], global_seq, *entry[2:]))
            conn.execute("COMMIT")
        return n / (time.perf_counter() - t0)

    def pg_commits(self, pgconn: Any, n: int) -> float:
        """Commits/s: the store's one append statement, prepared, in autocommit, through libpq as the store sends it."""
        from fillfinish.record.write_path import _PG_APPEND_NUMBERED

        rows = [[str(v).encode() for v in (*ledger, *entry[2:7])] for ledger, entry in self.rows(n)]
        if not self._prepared:
            result = pgconn.prepare(b"bench_rows", _PG_APPEND_NUMBERED)
            assert result.status == 1, result.error_message  # COMMAND_OK
            self._prepared = True
        t0 = time.perf_counter()
        for params in rows:
            result = pgconn.exec_prepared(b"bench_rows", params)
            if result.status != 2:  # TUPLES_OK
                raise RuntimeError(f"record rows, SQL only: {result.error_message!r}")
        return n / (time.perf_counter() - t0)


def raw_sqlite_rate(path: Path, n: int) -> float:
    """Commits/s of plain sqlite3 (WAL, synchronous=FULL) on a new connection: its WAL starts empty and grows, which
    costs more per commit than a warm WAL (bench_batch's reference; bench_record compares warm with warm)."""
    conn = raw_sqlite_connection(path)
    try:
        return raw_sqlite_commits(conn, n)
    finally:
        conn.close()


def store_rate(store: RecordStore, batch: str, n: int) -> float:
    """Entries/s of RecordStore.append (hash chain, keyed ledger row, one commit each)."""
    t0 = time.perf_counter()
    for _ in range(n):
        store.append(batch, "vial", DATA, "system")
    return n / (time.perf_counter() - t0)


def entry_sized_row(i: int) -> tuple[str, str]:
    """(ts, data) of a raw row as large as one record entry: its data text, kind, actor, batch id and two hashes."""
    text = json.dumps(dict(DATA, vial=i), sort_keys=True, separators=(",", ":"))
    return f"{time.time():.6f}", f"vial|system|B-20261130-0001|{text}|{'0' * 64}|{'1' * 64}"


def backend_cpu(conn: object) -> float | None:
    """CPU seconds (user + system) of the PostgreSQL backend serving psycopg `conn`, when the server runs on this
    machine and /proc shows it (else None)."""
    try:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[attr-defined]
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class CpuMeter:
    """Client CPU (this process) plus the serving backend's CPU over measured blocks: per-commit CPU moves far less
    with the machine's load than wall time does."""

    def __init__(self) -> None:
        """Nothing measured yet."""
        self.seconds, self.count, self.server_seen = 0.0, 0, True

    def measure(self, conn: object, block: callable, n: int) -> float:  # type: ignore[valid-type]
        """Run block() (n commits) and add its CPU; return block()'s result."""
        server0, client0 = backend_cpu(conn), time.process_time()
        result = block()
        server1 = backend_cpu(conn)
        self.seconds += time.process_time() - client0
        if server0 is None or server1 is None:
            self.server_seen = False
        else:
            self.seconds += server1 - server0
        self.count += n
        return result

    def per_commit_us(self) -> float:
        """Mean CPU microseconds per commit."""
        return self.seconds / max(self.count, 1) * 1e6


def pg_connect(url: str) -> Any:
    """An autocommit psycopg connection to the server of SQLAlchemy URL `url` (its search_path option kept)."""
    import psycopg
    from sqlalchemy.engine import make_url

    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False),
                           autocommit=True)


def raw_pg_rate(url: str, n: int, meter: CpuMeter | None = None) -> float:
    """Commits/s of plain psycopg on the same server: one autocommitted INSERT per row of an entry's size
    (synchronous commit), into a table with one index (its primary key)."""
    with pg_connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id BIGSERIAL PRIMARY KEY, ts TEXT, data TEXT)")
        rows = [entry_sized_row(i) for i in range(n)]

        def block() -> float:
            t0 = time.perf_counter()
            for row in rows:
                conn.execute("INSERT INTO bench_raw (ts, data) VALUES (%s, %s)", row)
            return n / (time.perf_counter() - t0)

        rate = meter.measure(conn, block, n) if meter is not None else block()
        conn.execute("DROP TABLE bench_raw")
    return rate


def pg_server_settings(url: str) -> str:
    """The durability settings of the server (fsync, synchronous_commit, full_page_writes), as one note."""
    with pg_connect(url) as conn:
        values = [f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"
                  for name in ("fsync", "synchronous_commit", "full_page_writes")]
    return ", ".join(values)


def interleaved(sides: Sequence[Callable[[], float]], rounds: int) -> list[float]:
    """Mean rate of each side, measured in alternating blocks (so load changes hit every side alike)."""
    rates: list[list[float]] = [[] for _ in sides]
    for _ in range(rounds):
        for side, measured in zip(sides, rates):
            measured.append(side())
    return [sum(measured) / len(measured) for measured in rates]


def sqlite_figures(folder: Path, n: int, rounds: int) -> list[Figure]:
    """RecordStore.append vs raw sqlite3 on the same disk, and the record's rows written by plain sqlite3 between."""
    store = RecordStore(f"sqlite:///{folder / 'append.db'}", key=str(folder / "bench.sitekey"))
    raw_conn = raw_sqlite_connection(folder / "raw.db")
    rows_store = RecordStore(f"sqlite:///{folder / 'rows.db'}", key=str(folder / "bench.sitekey"))
    rows_conn = None
    try:
        batch = store.create_batch(**BATCH)
        sql_rows = RecordRowsSql(rows_store.create_batch(**BATCH), "bench-sql")
        rows_store.close()
        rows_conn = sqlite3.connect(folder / "rows.db", isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):  # the store's (connect.py)
            rows_conn.execute(f"PRAGMA {pragma}")
        # all warm: past their first WAL checkpoint (1,000 frames), so each WAL file has its steady size and commits
        # overwrite it; a growing WAL costs more a commit (until 2026-12-01 the raw side reopened its connection each
        # block and so measured a partly growing WAL: about 10-20 % slower, which flattered the ratio)
        store_rate(store, batch, 250)
        raw_sqlite_commits(raw_conn, 1_100)
        sql_rows.sqlite_commits(rows_conn, 250)
        raw, rows, ours = interleaved([lambda: raw_sqlite_commits(raw_conn, n),
                                       lambda: sql_rows.sqlite_commits(rows_conn, n),
                                       lambda: store_rate(store, batch, n)], rounds)
        assert store.verify(batch).ok
    finally:
        raw_conn.close()
        if rows_conn is not None:
            rows_conn.close()
        store.close()
    return [Figure("RecordStore.append alone vs raw SQLite commit (WAL, FULL)", ours, raw, "/s", "higher"),
            Figure("record's two rows, SQL only, vs raw SQLite commit (the schema's ceiling)", rows, raw, "/s",
                   "higher"),
            Figure("RecordStore.append vs the record's two rows, SQL only (SQLite: our Python's share)", ours, rows,
                   "/s", "higher")]


def fresh_pg_schema(url: str) -> tuple[str, str]:
    """A new schema on the server and a URL that uses it (search_path), for a clean record."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"ffbench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)


def drop_pg_schema(url: str, schema: str) -> None:
    """Drop a bench schema."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _writer(url: str, key: str, line: str, n: int, start: multiprocessing.synchronize.Event,  # type: ignore[name-defined]
            out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One line's controller: its own store and batch, n appends once `start` is set; puts (line, batch, rate)."""
    store = RecordStore(url, key=key, line_id=line)
    try:
        batch = store.create_batch(**BATCH)
        store.append(batch, "vial", DATA, "system")
        start.wait()
        out.put((line, batch, store_rate(store, batch, n)))
    finally:
        store.close()


def _raw_writer(url: str, key: str, line: str, n: int, start: multiprocessing.synchronize.Event,  # type: ignore[name-defined]
                out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One raw committer, the baseline of a line: plain psycopg, n autocommitted INSERTs of an entry-sized row into the
    shared raw table once `start` is set; puts (line, "raw", rate). `key` is unused (the same signature as _writer)."""
    with pg_connect(url) as conn:
        rows = [entry_sized_row(i) for i in range(n)]
        for row in rows[:10]:  # psycopg prepares a statement on its fifth run: warm it like the store's first append
            conn.execute("INSERT INTO bench_raw_lines (ts, data) VALUES (%s, %s)", row)
        start.wait()
        t0 = time.perf_counter()
        for row in rows:
            conn.execute("INSERT INTO bench_raw_lines (ts, data) VALUES (%s, %s)", row)
        out.put((line, "raw", n / (time.perf_counter() - t0)))


def raw_lines_at_once(url: str, lines: int, n: int) -> float:
    """Mean per-committer rate of `lines` raw psycopg committers at once on one table of the same database: the
    machine's own ceiling for several lines (two cores shared by the writers and their server backends)."""
    with pg_connect(url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw_lines (id BIGSERIAL PRIMARY KEY, ts TEXT, data TEXT)")
    try:
        results = lines_at_once(url, "", lines, n, writer=_raw_writer)
    finally:
        with pg_connect(url) as conn:
            conn.execute("DROP TABLE bench_raw_lines")
    return sum(rate for _, _, rate in results) / len(results)


def lines_at_once(url: str, key: str, lines: int, n: int,
                  writer: Callable[..., None] | None = None) -> list[tuple[str, str, float]]:
    """Start `lines` writer processes (default: RecordStore writers), release them together, collect
    (line, batch, entries/s)."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    target = writer or _writer
    procs = [context.Process(target=target, args=(url, key, f"line-{i + 1}", n, start, out)) for i in range(lines)]
    for proc in procs:
        proc.start()
    time.sleep(2.0)  # let every writer open its store and create its batch before the start signal
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return sorted(results)


@contextlib.contextmanager
def record_rows_pg(url: str) -> Iterator[tuple[RecordRowsSql, Any]]:
    """A schema of its own (its rows carry no valid hashes, so they must not meet a verify) with the record's tables and
    a batch, and an autocommit psycopg connection to it: the SQL-only side of the append figures."""
    schema, schema_url = fresh_pg_schema(url)
    try:
        with tempfile.TemporaryDirectory(prefix="ff-bench-rows-") as tmp:
            store = RecordStore(schema_url, key=str(Path(tmp) / "rows.sitekey"))
            try:
                sql_rows = RecordRowsSql(store.create_batch(**BATCH), "bench-sql")
            finally:
                store.close()
        with pg_connect(schema_url) as conn:
            sql_rows.pg_commits(conn.pgconn, 50)
            yield sql_rows, conn
    finally:
        drop_pg_schema(url, schema)


def pg_figures(url: str, folder: Path, n: int, rounds: int) -> tuple[list[Figure], list[list[str]]]:
    """RecordStore.append vs raw psycopg, and four lines at once vs one alone beside four raw committers vs one, on one
    PostgreSQL database."""
    key = str(folder / "pg.sitekey")
    schema, schema_url = fresh_pg_schema(url)
    try:
        store = RecordStore(schema_url, key=key)
        try:
            batch = store.create_batch(**BATCH)
            store_rate(store, batch, 50)
            raw_cpu, our_cpu, rows_cpu = CpuMeter(), CpuMeter(), CpuMeter()
            ours_conn = store._raw.driver_connection  # noqa: SLF001 - the write path's connection, for its backend
            with record_rows_pg(url) as (sql_rows, rows_conn):
                raw, sql_only, ours = interleaved(
                    [lambda: raw_pg_rate(schema_url, n, raw_cpu),
                     lambda: rows_cpu.measure(rows_conn, lambda: sql_rows.pg_commits(rows_conn.pgconn, n), n),
                     lambda: our_cpu.measure(ours_conn, lambda: store_rate(store, batch, n), n)], rounds)
        finally:
            store.close()
        alone = lines_at_once(schema_url, key, 1, n)[0][2]
        together = lines_at_once(schema_url, key, 4, n)
        raw_alone = raw_lines_at_once(schema_url, 1, n)
        raw_together = raw_lines_at_once(schema_url, 4, n)
        check = RecordStore(schema_url, key=key, create=False)
        try:
            report = check.verify()
            counts = {b: len(check.entries(b)) for _, b, _ in together}
        finally:
            check.close()
    finally:
        drop_pg_schema(url, schema)
    per_line = sum(rate for _, _, rate in together) / len(together)
    rows = [[line, batch, f"{rate:,.0f} /s", f"{counts[batch]} entries"] for line, batch, rate in together]
    rows.append(["verify after the run", "", "intact" if report.ok else "NOT INTACT", f"{len(report.ledger.heads)} "
                 "line ledgers"])
    if not report.ok or any(c != n + 1 for c in counts.values()):
        raise SystemExit(f"four lines at once lost or broke entries: {report.lines()[-3:]} {counts}")
    where = "client + server backend" if raw_cpu.server_seen and our_cpu.server_seen else "client only"
    rows.append(["PostgreSQL server settings", "", pg_server_settings(url), ""])
    rows.append(["PostgreSQL CPU per commit, raw / record rows SQL only / append",
                 f"{raw_cpu.per_commit_us():.0f} / {rows_cpu.per_commit_us():.0f} / {our_cpu.per_commit_us():.0f} us",
                 where, f"load average {os.getloadavg()[0]:.1f}"])
    return [Figure("RecordStore.append alone vs raw PostgreSQL commit", ours, raw, "/s", "higher"),
            Figure("record's append statement, SQL only, vs raw PostgreSQL commit (the schema's ceiling)", sql_only,
                   raw, "/s", "higher"),
            Figure("RecordStore.append vs its statement, SQL only (PostgreSQL: our Python's share)", ours, sql_only,
                   "/s", "higher"),
            Figure("PostgreSQL commits per CPU-second, append vs raw", 1e6 / max(our_cpu.per_commit_us(), 1e-9),
                   1e6 / max(raw_cpu.per_commit_us(), 1e-9), "/s", "higher"),
            Figure("per-line append, 4 lines at once vs 1 line alone (PostgreSQL)", per_line, alone, "/s",
                   "higher"),
            Figure("per-line raw commit, 4 committers at once vs 1 alone (PostgreSQL: this machine's ceiling)",
                   raw_together, raw_alone, "/s", "higher"),
            Figure("4-line scaling of append vs 4-line scaling of raw commits (PostgreSQL)", per_line / alone,
                   raw_together / raw_alone, "x", "higher")], rows


def cached_record(entries: int, cache_root: Path | None) -> tuple[Path, str, dict[str, object]]:
    """(database file, key file, build info) of a bench record of `entries` entries: built once by make_record under
    `cache_root` (default: the temp folder) and reused by later runs; a build that did not finish is started over."""
    from bench.make_record import build

    folder = (cache_root or Path(tempfile.gettempdir())) / f"fillfinish-bench-verify-{entries}"
    db, key, marker = folder / "verify.db", folder / "verify.sitekey", folder / "built.json"
    if marker.is_file() and db.is_file() and key.is_file():
        info = json.loads(marker.read_text())
        info["seconds"] = f"{info.get('seconds', '?')} (cached, built {info.get('built_at', '?')})"
        return db, str(key), info
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    info = build(f"sqlite:///{db}", entries, key=str(key))
    info["built_at"] = time.strftime("%Y-%m-%d %H:%M")
    marker.write_text(json.dumps(info))
    return db, str(key), info


def verify_figures(entries: int, jobs: int, cache_root: Path | None) -> tuple[list[Figure], list[list[str]]]:
    """Time `fillfinish record verify` in its own process on a (cached) record of `entries` entries, and a raw read +
    SHA-256 of the same rows in the same run."""
    db, key, info = cached_record(entries, cache_root)
    env = dict(os.environ, PYTHONPATH=str(REPO), FILLFINISH_SITE_KEY=key)
    cmd = [sys.executable, "-m", "fillfinish", "record", "verify", "--db", str(db), "--jobs", str(jobs)]
    with tempfile.TemporaryDirectory(prefix="ff-bench-verify-") as tmp:
        log = Path(tmp) / "verify.out"
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        with log.open("w") as sink:  # a file, not a pipe: a million-entry report must not block the child
            proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)
            _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out = log.read_text()
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # largest finished child (verify's workers)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"record verify failed on the bench record:\n{out[-2000:]}")
    raw_wall, raw_cpu = raw_read_and_hash(db)
    cpu = usage.ru_utime + usage.ru_stime
    rows = [["entries / batches built", f"{entries:,} / {info['batches']:,}", f"in {info['seconds']} s"],
            ["record verify wall time", f"{wall:.2f} s", f"--jobs {jobs}, load average {load:.1f} at the start"],
            ["record verify CPU time (process and workers)", f"{cpu:.1f} s",
             f"{entries / max(cpu, 1e-9):,.0f} entries per CPU-second"],
            ["record verify peak RSS (verify process / largest child)", f"{usage.ru_maxrss / 1024:.0f} MB",
             f"{children / 1024:.0f} MB"],
            ["raw read + SHA-256 of every entry (one process)", f"{raw_wall:.2f} s", f"{raw_cpu:.2f} CPU-s, the "
             "baseline below"]]
    return [Figure(f"record verify entries/s ({entries:,} entries)", entries / wall, entries / raw_wall, "/s",
                   "higher"),
            Figure("record verify entries per CPU-second", entries / max(cpu, 1e-9), entries / max(raw_cpu, 1e-9),
                   "/s", "higher")], rows


def raw_read_and_hash(db: Path) -> tuple[float, float]:
    """(wall, CPU) seconds for plain sqlite3 to read every entry row and SHA-256 its prev_hash + data (no JSON, no
    ledger), in this process."""
    import hashlib

    t0, c0 = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for row in conn.execute("SELECT prev_hash, data FROM entry"):
            hashlib.sha256((row[0] + row[1]).encode()).hexdigest()
    finally:
        conn.close()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    """Parse the arguments, run, print the figures."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=positive_int, default=2000, help="appends per block (default 2000)")
    parser.add_argument("--rounds", type=positive_int, default=3, help="alternating blocks (default 3)")
    parser.add_argument("--pg", default=os.environ.get("FILLFINISH_BENCH_PG_URL") or None,
                        help="PostgreSQL URL (env FILLFINISH_BENCH_PG_URL): adds the PostgreSQL and four-line figures")
    parser.add_argument("--verify-entries", type=positive_int, default=1_000_000,
                        help="entries of the verify benchmark (default 1,000,000)")
    parser.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1,
                        help="verify worker processes (default: the cores)")
    parser.add_argument("--verify-only", action="store_true", help="only the verify figure")
    parser.add_argument("--verify-cache", type=Path, default=None,
                        help="folder under which the verify record is built once and reused (default: the temp folder)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the databases (default: a temp folder)")
    args = parser.parse_args()
    quiet_logging()
    figures: list[Figure] = []
    detail: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="ff-bench-record-", dir=args.dir) as tmp:
        folder = Path(tmp)
        if not args.verify_only:
            figures += sqlite_figures(folder, args.n, args.rounds)
        if args.pg and not args.verify_only:
            pg, rows = pg_figures(args.pg, folder, args.n, args.rounds)
            figures += pg
            detail += rows
        else:
            detail.append(["PostgreSQL figures", "skipped", "give --pg URL or FILLFINISH_BENCH_PG_URL"])
        ver, rows = verify_figures(args.verify_entries, args.jobs, args.verify_cache)
        figures += ver
        detail += rows
    print_table(("detail", "value", "note"), [row[:3] for row in detail])
    print()
    print_figures(figures)
    if args.json:
        write_figures(args.json, figures, [" | ".join(row) for row in detail])


if __name__ == "__main__":
    main()
