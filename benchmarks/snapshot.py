#!/usr/bin/env python
"""Snapshot benchmark: previsio against the usual ways of turning an SQL table (or a CSV file) into Parquet.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python benchmarks/snapshot.py --source postgresql --rows 5000000
    .venv/bin/python benchmarks/snapshot.py --source mysql --rows 2000000 --repeat 3
    .venv/bin/python benchmarks/snapshot.py --source sqlite --rows 1000000 --methods adbc,previsio
    .venv/bin/python benchmarks/snapshot.py --source csv --rows 1000000
    .venv/bin/python benchmarks/snapshot.py --source postgresql --rows 5000000 --memory-growth

Each method runs in its own subprocess (this script with ``--worker``), one after the other, so that its peak
memory is its own. previsio runs end to end through the SDK against a platform started for that run alone in a
fresh temporary home; its peak memory is the platform process's ``VmHWM``. See benchmarks/README.rst.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform as pyplatform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data"
RESULTS_DIR = HERE / "results"
DB_NAME = "previsio_bench"
#: The database servers (trust / empty-password logins); the environment may point elsewhere.
PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
MY_HOST = os.environ.get("BENCH_MYSQL_HOST", "127.0.0.1")
MY_PORT = int(os.environ.get("BENCH_MYSQL_PORT", "3306"))
MY_USER = os.environ.get("BENCH_MYSQL_USER", "root")
MY_PASSWORD = ""
RESULT_MARK = "@@BENCH_RESULT@@ "
#: Rows per Parquet row group when a method streams batches (the platform's own value).
ROW_GROUP_ROWS = 128 * 1024
GROWTH_BASE_ROWS = 1_000_000

SOURCES = ("postgresql", "mysql", "sqlite", "csv")
SOURCE_TITLES = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB", "sqlite": "SQLite", "csv": "CSV file"}
METHODS: dict[str, list[str]] = {
    "postgresql": ["copy_drain", "adbc", "connectorx", "pandas", "previsio", "sdk_overhead"],
    "mysql": ["connectorx", "pandas", "previsio", "sdk_overhead"],
    "sqlite": ["adbc", "connectorx", "pandas", "previsio", "sdk_overhead"],
    "csv": ["pyarrow_csv", "pyarrow_csv_stream", "pandas_csv", "previsio", "sdk_overhead"],
}
METHOD_NOTES = {
    "copy_drain": "psycopg COPY (FORMAT binary) read loop, nothing decoded or written: the wire limit",
    "adbc": "ADBC cursor -> fetch_record_batch() -> ParquetWriter (streamed)",
    "connectorx": "connectorx.read_sql(return_type='arrow') -> pq.write_table (whole table in memory)",
    "pandas": "pandas.read_sql(SQLAlchemy engine) -> DataFrame.to_parquet",
    "pyarrow_csv": "pyarrow.csv.read_csv -> pq.write_table (whole file in memory)",
    "pyarrow_csv_stream": "pyarrow.csv.open_csv -> ParquetWriter (streamed)",
    "pandas_csv": "pandas.read_csv(parse_dates) -> DataFrame.to_parquet",
    "previsio": "SDK create_dataset end to end; peak RSS = platform process VmHWM",
    "sdk_overhead": "1000 Connector.from_id vs 1000 GETs on a bare requests.Session",
}
COLUMNS = ["id", "qty", "price", "label", "created_at", "flag", "maybe"]


class BenchError(Exception):
    """A problem the user must fix (a service down, a bad option): printed without a traceback."""


# ------------------------------------------------------------------------------------------------------------
# Where the data lives
# ------------------------------------------------------------------------------------------------------------
def table_name(rows: int) -> str:
    return f"bench_{rows}"


def sqlite_path(rows: int) -> Path:
    return DATA_DIR / f"bench_{rows}.sqlite"


def csv_path(rows: int) -> Path:
    return DATA_DIR / f"bench_{rows}.csv"


def pg_uri(database: str = DB_NAME) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def my_uri(database: str = DB_NAME) -> str:
    return f"mysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{database}"


# ------------------------------------------------------------------------------------------------------------
# Test data: the same rows in every source
# ------------------------------------------------------------------------------------------------------------
# id          bigint     1..N
# qty         int        (id * 7919) % 1000
# price       double     ((id * 2654435761) % 100000) / 100.0
# label       text       md5(id as decimal text): 32 hex characters, incompressible like real labels
# created_at  timestamp  2020-01-01 00:00:00 + id seconds (no time zone)
# flag        boolean    id % 2 = 0
# maybe       int        NULL when id % 10 = 0 (10 %), else id % 1000

PG_DDL = """CREATE TABLE {t} (id bigint, qty integer, price double precision, label text,
    created_at timestamp without time zone, flag boolean, maybe integer)"""
PG_FILL = """INSERT INTO {t}
SELECT g, ((g * 7919) % 1000)::int, ((g * 2654435761) % 100000)::float8 / 100.0::float8, md5(g::text),
       timestamp '2020-01-01 00:00:00' + g * interval '1 second', g % 2 = 0,
       CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 1000)::int END
FROM generate_series({lo}::bigint, {hi}::bigint) AS g"""
PG_EXPECTED_TYPES = {
    "id": "bigint",
    "qty": "integer",
    "price": "double precision",
    "label": "text",
    "created_at": "timestamp without time zone",
    "flag": "boolean",
    "maybe": "integer",
}

MY_DDL = """CREATE TABLE {t} (id BIGINT NOT NULL, qty INT, price DOUBLE, label VARCHAR(64),
    created_at DATETIME, flag BOOLEAN, maybe INT, PRIMARY KEY (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
MY_FILL = """INSERT INTO {t}
SELECT seq, (seq * 7919) % 1000, ((seq * 2654435761) % 100000) / 100, MD5(seq),
       TIMESTAMP '2020-01-01 00:00:00' + INTERVAL seq SECOND, seq % 2 = 0, IF(seq % 10 = 0, NULL, seq % 1000)
FROM seq_{lo}_to_{hi}"""
MY_EXPECTED_TYPES = {
    "id": "bigint",
    "qty": "int",
    "price": "double",
    "label": "varchar",
    "created_at": "datetime",
    "flag": "tinyint",
    "maybe": "int",
}

SQLITE_DDL = """CREATE TABLE {t} (id BIGINT, qty INTEGER, price DOUBLE, label TEXT, created_at TIMESTAMP,
    flag BOOLEAN, maybe INTEGER)"""


def generate_batches(rows: int, chunk: int = 500_000) -> Iterator[Any]:
    """The benchmark rows as Arrow record batches (the same values the SQL generators produce)."""
    import numpy as np
    import pyarrow as pa

    for lo in range(1, rows + 1, chunk):
        ids = np.arange(lo, min(lo + chunk, rows + 1), dtype=np.int64)
        qty = ((ids * 7919) % 1000).astype(np.int32)
        price = ((ids * 2654435761) % 100000).astype(np.float64) / 100.0
        labels = [hashlib.md5(str(i).encode()).hexdigest() for i in ids.tolist()]
        created = np.datetime64("2020-01-01T00:00:00", "s") + ids.astype("timedelta64[s]")
        flag = ids % 2 == 0
        maybe = pa.array((ids % 1000).astype(np.int32), mask=(ids % 10 == 0))
        yield pa.record_batch(
            [
                pa.array(ids),
                pa.array(qty),
                pa.array(price),
                pa.array(labels, pa.string()),
                pa.array(created, pa.timestamp("s")),
                pa.array(flag),
                maybe,
            ],
            names=COLUMNS,
        )


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_postgres(rows: int) -> None:
    """Create database previsio_bench and table bench_<rows> if missing (or if their shape is wrong)."""
    import psycopg

    try:
        admin = psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5, autocommit=True
        )
    except psycopg.OperationalError as exc:
        raise BenchError(
            f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} as {PG_USER}: "
            f"{str(exc).strip()}\nStart it (e.g. pg_ctlcluster 15 main start) and retry.",
        ) from None
    with admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
            _log(f"creating PostgreSQL database {DB_NAME}")
            admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    t = table_name(rows)
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DB_NAME, autocommit=True) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                (t,),
            ).fetchall()
        )
        if types:
            count = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # also warms the OS page cache
            if types == PG_EXPECTED_TYPES and count == rows:
                return
            _log(
                f"PostgreSQL table {t} has {count} rows / columns {types}: not the benchmark's; recreating it"
            )
        building = f"{t}__building"
        _log(f"creating PostgreSQL table {t} ({rows:,} rows, generate_series)...")
        started = time.monotonic()
        conn.execute(f"DROP TABLE IF EXISTS {building}")
        conn.execute(PG_DDL.format(t=building))
        step = 2_000_000
        for lo in range(1, rows + 1, step):
            conn.execute(PG_FILL.format(t=building, lo=lo, hi=min(lo + step - 1, rows)))
        # Hint bits are set now, not by the first method timed.
        conn.execute(f"VACUUM (FREEZE, ANALYZE) {building}")
        with conn.transaction():
            conn.execute(f"DROP TABLE IF EXISTS {t}")
            conn.execute(f"ALTER TABLE {building} RENAME TO {t}")
        conn.execute(f"SELECT count(*) FROM {t}")
        _log(f"  done in {time.monotonic() - started:.1f} s")


def _mysql_connect(database: str | None = None, **kwargs: Any) -> Any:
    import pymysql

    try:
        return pymysql.connect(
            host=MY_HOST,
            port=MY_PORT,
            user=MY_USER,
            password=MY_PASSWORD,
            database=database,
            connect_timeout=5,
            autocommit=True,
            **kwargs,
        )
    except pymysql.err.OperationalError as exc:
        raise BenchError(
            f"MySQL/MariaDB is not reachable at {MY_HOST}:{MY_PORT} as {MY_USER}: {exc}\n"
            "Start it (e.g. start-stop-daemon --start --background --exec /usr/sbin/mariadbd) "
            "and retry."
        ) from None


def ensure_mysql(rows: int) -> None:
    """Create database previsio_bench and table bench_<rows> if missing (or if their shape is wrong)."""
    t = table_name(rows)
    conn = _mysql_connect(local_infile=True)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DB_NAME}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{DB_NAME}`")
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = %s ORDER BY ordinal_position",
            (DB_NAME, t),
        )
        types = {r[0]: r[1] for r in cur.fetchall()}
        if types:
            cur.execute(f"SELECT count(*) FROM `{t}`")
            count = cur.fetchone()[0]
            if types == MY_EXPECTED_TYPES and count == rows:
                cur.execute(f"SELECT sum(length(label)) FROM `{t}`")  # reads every row: warms the caches
                return
            _log(f"MySQL table {t} has {count} rows / columns {types}: not the benchmark's; recreating it")
        building = f"{t}__building"
        started = time.monotonic()
        cur.execute(f"DROP TABLE IF EXISTS `{building}`")
        cur.execute(MY_DDL.format(t=building))
        try:
            cur.execute("SELECT count(*) FROM seq_1_to_1")
            have_sequence = True
        except Exception:  # noqa: BLE001 - not MariaDB, or the SEQUENCE engine is disabled
            have_sequence = False
        if have_sequence:
            _log(f"creating MySQL table {t} ({rows:,} rows, MariaDB SEQUENCE engine)...")
            step = 1_000_000
            for lo in range(1, rows + 1, step):
                cur.execute(MY_FILL.format(t=building, lo=lo, hi=min(lo + step - 1, rows)))
        else:
            _log(f"creating MySQL table {t} ({rows:,} rows, LOAD DATA LOCAL INFILE)...")
            tmp_csv = DATA_DIR / f"mysql_load_{rows}.csv"
            DATA_DIR.mkdir(parents=True, exist_ok=True)
            try:
                _write_mysql_csv(rows, tmp_csv)
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE `{building}` FIELDS TERMINATED BY ',' "
                    "LINES TERMINATED BY '\\n' (id, qty, price, label, created_at, flag, @maybe) "
                    "SET maybe = NULLIF(@maybe, '')",
                    (str(tmp_csv),),
                )
            finally:
                tmp_csv.unlink(missing_ok=True)
        cur.execute(f"DROP TABLE IF EXISTS `{t}`")
        cur.execute(f"RENAME TABLE `{building}` TO `{t}`")
        cur.execute(f"ANALYZE TABLE `{t}`")
        cur.fetchall()
        _log(f"  done in {time.monotonic() - started:.1f} s")
    finally:
        conn.close()


def _write_mysql_csv(rows: int, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    with open(path, "wb") as fh:
        for batch in generate_batches(rows):
            cols = [batch.column(i) for i in range(batch.num_columns)]
            cols[5] = pc.cast(cols[5], pa.int8())  # booleans as 0/1
            table = pa.Table.from_arrays(cols, names=COLUMNS)
            pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def ensure_sqlite(rows: int) -> Path:
    """Create benchmarks/.data/bench_<rows>.sqlite with table bench_<rows> if missing."""
    import sqlite3

    path = sqlite_path(rows)
    t = table_name(rows)
    if path.exists():
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                if conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] == rows:
                    return path
        except sqlite3.Error:
            pass
        _log(f"{path} is incomplete; recreating it")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    _log(f"creating SQLite database {path} ({rows:,} rows)...")
    started = time.monotonic()
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute(SQLITE_DDL.format(t=t))
        for batch in generate_batches(rows):
            d = batch.to_pydict()
            created = [v.strftime("%Y-%m-%d %H:%M:%S") for v in d["created_at"]]
            flags = [int(v) for v in d["flag"]]
            conn.executemany(
                f"INSERT INTO {t} VALUES (?, ?, ?, ?, ?, ?, ?)",
                zip(d["id"], d["qty"], d["price"], d["label"], created, flags, d["maybe"], strict=True),
            )
        conn.commit()
    finally:
        conn.close()
    os.replace(tmp, path)
    _log(f"  done in {time.monotonic() - started:.1f} s")
    return path


def ensure_csv(rows: int) -> Path:
    """Create benchmarks/.data/bench_<rows>.csv (header line, nulls empty, ISO timestamps) if missing."""
    import pyarrow.csv as pacsv

    path = csv_path(rows)
    if path.exists():
        lines = 0
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 24), b""):
                lines += chunk.count(b"\n")
        if lines == rows + 1:
            return path
        _log(f"{path} has {lines - 1} rows, not {rows}; recreating it")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    _log(f"creating CSV file {path} ({rows:,} rows)...")
    started = time.monotonic()
    with open(tmp, "wb") as fh:
        first = True
        for batch in generate_batches(rows):
            pacsv.write_csv(batch, fh, pacsv.WriteOptions(include_header=first))
            first = False
    os.replace(tmp, path)
    _log(f"  done in {time.monotonic() - started:.1f} s")
    return path


def ensure_source(source: str, rows: int) -> None:
    if source == "postgresql":
        ensure_postgres(rows)
    elif source == "mysql":
        ensure_mysql(rows)
    elif source == "sqlite":
        ensure_sqlite(rows)
    else:
        ensure_csv(rows)


def drop_source(source: str, rows: int) -> None:
    """Remove what ensure_source made (without --keep)."""
    t = table_name(rows)
    if source == "postgresql":
        import psycopg

        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DB_NAME, autocommit=True
        ) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {t}")
    elif source == "mysql":
        conn = _mysql_connect(DB_NAME)
        try:
            conn.cursor().execute(f"DROP TABLE IF EXISTS `{t}`")
        finally:
            conn.close()
    elif source == "sqlite":
        sqlite_path(rows).unlink(missing_ok=True)
    else:
        csv_path(rows).unlink(missing_ok=True)


def server_version(source: str, rows: int) -> str:
    try:
        if source == "postgresql":
            import psycopg

            with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DB_NAME) as conn:
                return "PostgreSQL " + conn.execute("SHOW server_version").fetchone()[0]
        if source == "mysql":
            conn = _mysql_connect(DB_NAME)
            try:
                cur = conn.cursor()
                cur.execute("SELECT VERSION(), @@innodb_buffer_pool_size")
                version, pool = cur.fetchone()
                return f"MySQL/MariaDB {version}, innodb_buffer_pool_size {int(pool) >> 20} MB"
            finally:
                conn.close()
        if source == "sqlite":
            import sqlite3

            return "SQLite " + sqlite3.sqlite_version
        return f"CSV file of {csv_path(rows).stat().st_size / 2**20:,.0f} MB"
    except Exception as exc:  # noqa: BLE001 - informational only
        return f"? ({exc})"


# ------------------------------------------------------------------------------------------------------------
# Worker side: one method, measured in this process
# ------------------------------------------------------------------------------------------------------------
def _proc_status(pid: int) -> dict[str, float]:
    """VmRSS/VmHWM/VmSize/VmPeak of a process, in MB."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "VmSize", "VmPeak"):
                out[key] = int(value.split()[0]) / 1024
    return out


def _stream_to_parquet(reader: Any, path: Path) -> int:
    """Write a RecordBatchReader to Parquet, ~ROW_GROUP_ROWS rows per row group, holding one group at most."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(path, reader.schema) as writer:
        pending: list[Any] = []
        pending_rows = 0
        for batch in reader:
            pending.append(batch)
            pending_rows += batch.num_rows
            rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, reader.schema))
                pending, pending_rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending, reader.schema))
    return rows


def _query(spec: dict[str, Any]) -> str:
    return f"SELECT * FROM {spec['table']}"


def m_copy_drain(spec: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    t0 = time.perf_counter()
    nbytes = 0
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DB_NAME) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY {spec['table']} TO STDOUT (FORMAT binary)") as copy:
            while data := copy.read():
                nbytes += len(data)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": spec["rows"], "extra": {"copy_bytes": nbytes}}


def m_adbc(spec: dict[str, Any]) -> dict[str, Any]:
    out = Path(spec["out_dir"]) / "adbc.parquet"
    if spec["source"] == "postgresql":
        import adbc_driver_postgresql.dbapi as adbc

        target: str = pg_uri()
    else:
        import adbc_driver_sqlite.dbapi as adbc

        target = spec["sqlite_path"]
    t0 = time.perf_counter()
    conn = adbc.connect(target)
    try:
        cur = conn.cursor()
        if spec["source"] == "sqlite":  # its default of 1024 rows per batch means many tiny batches
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
        cur.execute(_query(spec))
        rows = _stream_to_parquet(cur.fetch_record_batch(), out)
        cur.close()
    finally:
        conn.close()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": rows, "extra": {"parquet_mb": out.stat().st_size / 2**20}}


def m_connectorx(spec: dict[str, Any]) -> dict[str, Any]:
    import connectorx as cx
    import pyarrow.parquet as pq

    uris = {"postgresql": pg_uri(), "mysql": my_uri(), "sqlite": f"sqlite://{spec.get('sqlite_path')}"}
    uri = uris[spec["source"]]
    out = Path(spec["out_dir"]) / "connectorx.parquet"
    t0 = time.perf_counter()
    table = cx.read_sql(uri, _query(spec), return_type="arrow")
    pq.write_table(table, out)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": table.num_rows, "extra": {"parquet_mb": out.stat().st_size / 2**20}}


def m_pandas(spec: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd
    import sqlalchemy as sa

    url = {
        "postgresql": f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}",
        "mysql": f"mysql+pymysql://{MY_USER}@{MY_HOST}:{MY_PORT}/{DB_NAME}?charset=utf8mb4",
        "sqlite": f"sqlite:///{spec.get('sqlite_path')}",
    }[spec["source"]]
    out = Path(spec["out_dir"]) / "pandas.parquet"
    t0 = time.perf_counter()
    engine = sa.create_engine(url)
    try:
        df = pd.read_sql(_query(spec), engine)
    finally:
        engine.dispose()
    df.to_parquet(out, index=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": len(df), "extra": {"parquet_mb": out.stat().st_size / 2**20}}


def m_pyarrow_csv(spec: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = Path(spec["out_dir"]) / "pyarrow_csv.parquet"
    t0 = time.perf_counter()
    table = pacsv.read_csv(spec["csv_path"])
    pq.write_table(table, out)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": table.num_rows, "extra": {"parquet_mb": out.stat().st_size / 2**20}}


def m_pyarrow_csv_stream(spec: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.csv as pacsv

    out = Path(spec["out_dir"]) / "pyarrow_csv_stream.parquet"
    t0 = time.perf_counter()
    reader = pacsv.open_csv(spec["csv_path"], read_options=pacsv.ReadOptions(block_size=16 << 20))
    rows = _stream_to_parquet(reader, out)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": rows, "extra": {"parquet_mb": out.stat().st_size / 2**20}}


def m_pandas_csv(spec: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    out = Path(spec["out_dir"]) / "pandas_csv.parquet"
    t0 = time.perf_counter()
    df = pd.read_csv(spec["csv_path"], parse_dates=["created_at"])
    df.to_parquet(out, index=False)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": len(df), "extra": {"parquet_mb": out.stat().st_size / 2**20}}


class _LocalPlatform:
    """The local platform of a fresh home, started through the SDK and always stopped."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.pid: int | None = None
        self.url = ""
        self.token = ""

    def __enter__(self) -> _LocalPlatform:
        from previsio_sdk.local import ensure_local_platform

        self.url, self.token = ensure_local_platform(self.home)
        self.pid = int(json.loads((self.home / "platform.json").read_text())["pid"])
        return self

    def __exit__(self, *exc: object) -> None:
        from previsio_sdk.local import stop_local_platform

        # The platform is this process's child: reap it as soon as it exits, or stop_local_platform sees the
        # zombie as alive and waits its whole timeout (see the report in benchmarks/README.rst).
        pid, done = self.pid, threading.Event()

        def reap() -> None:
            while pid is not None and not done.is_set():
                try:
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        return
                except ChildProcessError:
                    return
                time.sleep(0.02)

        reaper = threading.Thread(target=reap, daemon=True)
        reaper.start()
        try:
            stop_local_platform(self.home)
        finally:
            done.set()


def _sql_connector(p: Any, spec: dict[str, Any]) -> Any:
    source = spec["source"]
    if source == "postgresql":
        return p.create_sql_connector("pg", host=PG_HOST, port=PG_PORT, username=PG_USER, database=DB_NAME)
    if source == "mysql":
        return p.create_sql_connector("my", host=MY_HOST, port=MY_PORT, username=MY_USER, database=DB_NAME)
    # csv: the connector is only fetched (sdk_overhead), never used
    path = spec.get("sqlite_path") or str(DATA_DIR / "none.sqlite")
    return p.create_sql_connector("lite", driver="sqlite", database=path)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def m_previsio(spec: dict[str, Any]) -> dict[str, Any]:
    import pyarrow.parquet as pq

    import previsio_sdk as pio

    home = Path(spec["home"])
    work = Path(spec["out_dir"])
    with _LocalPlatform(home) as plat:
        assert plat.pid is not None
        idle = _proc_status(plat.pid)
        c = pio.Client(url=plat.url, token=plat.token)
        job_seen: dict[str, Any] = {}
        wait_job = c.wait_job

        def spy(job_id: str, **kwargs: Any) -> dict[str, Any]:  # keeps the finished job to read its times
            job = wait_job(job_id, **kwargs)
            job_seen.update(job)
            return job

        c.wait_job = spy  # type: ignore[method-assign]
        p = pio.Project.new("bench", client=c)
        if spec["source"] == "csv":
            t0 = time.perf_counter()
            ds = p.create_dataset("d", file_name=spec["csv_path"], progress=False)
            seconds = time.perf_counter() - t0
        else:
            conn = _sql_connector(p, spec)
            src = p.create_datasource(conn, "t", table=spec["table"])
            t0 = time.perf_counter()
            ds = p.create_dataset("d", datasource=src, progress=False)
            seconds = time.perf_counter() - t0
        after = _proc_status(plat.pid)
        server_s = None
        if job_seen.get("created_at") and job_seen.get("finished_at"):
            created = datetime.fromisoformat(job_seen["created_at"].replace("Z", "+00:00"))
            finished = datetime.fromisoformat(job_seen["finished_at"].replace("Z", "+00:00"))
            server_s = (finished - created).total_seconds()

        local = work / "local.parquet"
        t0 = time.perf_counter()
        ds.download(local)
        download_s = time.perf_counter() - t0

        # Warm up pandas and the conversion code first: the first to_pandas() of a process pays imports.
        from previsio_sdk.datasets import arrow_to_pandas

        warm = pq.read_table(local).slice(0, 1000)
        warm.to_pandas()
        arrow_to_pandas(warm)
        del warm
        # Two rounds, alternating, best of each: the SDK side downloads the file then converts it.
        local_times: list[float] = []
        sdk_times: list[float] = []
        arrow_times: list[float] = []
        sdk_rows = 0
        for _ in range(2):
            gc.collect()
            t0 = time.perf_counter()
            df = pq.read_table(local).to_pandas()
            local_times.append(time.perf_counter() - t0)
            del df
            gc.collect()
            t0 = time.perf_counter()
            df = ds.to_pandas()
            sdk_times.append(time.perf_counter() - t0)
            sdk_rows = len(df)
            del df
            gc.collect()
            t0 = time.perf_counter()
            table = ds.to_arrow()
            arrow_times.append(time.perf_counter() - t0)
            del table
        gc.collect()
        local_read_s, to_pandas_s, to_arrow_s = min(local_times), min(sdk_times), min(arrow_times)

        heads = []
        for _ in range(5):
            t0 = time.perf_counter()
            h = ds.head(100)
            heads.append(time.perf_counter() - t0)
            assert len(h) == min(100, spec["rows"]), len(h)
        return {
            "seconds": seconds,
            "rows": ds.num_rows,
            "peak_rss_mb": after["VmHWM"],
            "extra": {
                "platform_idle_rss_mb": idle["VmRSS"],
                "platform_idle_hwm_mb": idle["VmHWM"],
                "platform_idle_vmsize_mb": idle["VmSize"],
                "platform_after_rss_mb": after["VmRSS"],
                "platform_after_hwm_mb": after["VmHWM"],
                "platform_after_vmpeak_mb": after["VmPeak"],
                "server_job_s": server_s,
                "parquet_mb": ds.size_bytes / 2**20,
                "download_s": download_s,
                "local_read_s": local_read_s,
                "to_pandas_s": to_pandas_s,
                "to_arrow_s": to_arrow_s,
                "to_pandas_rows": sdk_rows,
                "head_first_s": heads[0],
                "head_median_s": _median(heads),
            },
        }


def m_sdk_overhead(spec: dict[str, Any]) -> dict[str, Any]:
    import requests

    import previsio_sdk as pio

    calls = int(spec.get("calls", 1000))
    block = 100
    with _LocalPlatform(Path(spec["home"])) as plat:
        c = pio.Client(url=plat.url, token=plat.token)
        p = pio.Project.new("bench", client=c)
        cid = _sql_connector(p, spec).id
        session = requests.Session()
        url = f"{plat.url}/api/v1/connectors/{cid}"
        headers = {"Authorization": f"Bearer {plat.token}"}

        def raw() -> None:
            resp = session.get(url, headers=headers, timeout=60)
            resp.raise_for_status()
            resp.json()

        def sdk() -> None:
            pio.Connector.from_id(cid, client=c)

        for _ in range(20):  # warm both connections and code paths
            raw()
            sdk()
        raw_s = sdk_s = 0.0
        done = 0
        while done < calls:  # alternate blocks so that drift on a busy machine hits both sides alike
            n = min(block, calls - done)
            t0 = time.perf_counter()
            for _ in range(n):
                raw()
            raw_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(n):
                sdk()
            sdk_s += time.perf_counter() - t0
            done += n
        return {
            "seconds": sdk_s,
            "rows": None,
            "extra": {"calls": calls, "sdk_s": sdk_s, "raw_s": raw_s, "ratio": sdk_s / raw_s},
        }


WORKERS = {name[2:]: fn for name, fn in globals().items() if name.startswith("m_") and callable(fn)}


def worker_main(spec_json: str) -> None:
    spec = json.loads(spec_json)
    result = WORKERS[spec["method"]](spec)
    result["worker_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.setdefault("peak_rss_mb", result["worker_maxrss_mb"])
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------------------------
# Driver side: runs the workers and reports
# ------------------------------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_leftover_platform(home: Path) -> None:
    """Stop a platform a failed or killed worker left running in ``home`` (it runs in its own session)."""
    try:
        pid = int(json.loads((home / "platform.json").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if str(home).encode() not in cmdline:  # the pid was reused by another process: not ours
        return
    _log(f"  stopping the platform left running by the worker (pid {pid})")
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.1)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_worker(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one method in a fresh subprocess; return its measures, or {"error": ...}."""
    scratch = Path(tempfile.mkdtemp(prefix=f"previsio-bench-{spec['method']}-"))
    spec = {**spec, "out_dir": str(scratch / "out"), "home": str(scratch / "home")}
    Path(spec["out_dir"]).mkdir()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            cwd=str(HERE.parent),
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"error": f"timed out after {timeout:.0f} s (raise --timeout)"}
        except BaseException:  # Ctrl-C: the worker runs in its own session and did not get it
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        for line in reversed(out.splitlines()):
            if line.startswith(RESULT_MARK):
                return json.loads(line[len(RESULT_MARK) :])
        tail = "\n".join(err.strip().splitlines()[-15:])
        return {"error": f"worker exited with code {proc.returncode}:\n{tail}"}
    finally:
        _kill_leftover_platform(Path(spec["home"]))
        shutil.rmtree(scratch, ignore_errors=True)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric measure over the successful runs."""
    ok = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"runs": len(runs), "ok": len(ok)}
    if not ok:
        out["error"] = runs[-1]["error"] if runs else "not run"
        return out
    for key in ("seconds", "peak_rss_mb", "worker_maxrss_mb"):
        out[key] = _median([r[key] for r in ok if r.get(key) is not None])
    out["peak_rss_mb_max"] = max(r["peak_rss_mb"] for r in ok)
    out["rows"] = ok[-1].get("rows")
    extra: dict[str, Any] = {}
    for key in ok[0].get("extra", {}):
        vals = [r["extra"][key] for r in ok if isinstance(r.get("extra", {}).get(key), (int, float))]
        extra[key] = _median(vals) if vals else None
    if "platform_after_hwm_mb" in extra:
        extra["platform_after_hwm_mb_max"] = max(r["extra"]["platform_after_hwm_mb"] for r in ok)
    out["extra"] = extra
    return out


def _fmt_num(x: float | None, digits: int = 2) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b or a != a or b != b:
        return None
    return a / b


def render_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [
        max(len(headers[i]), *(len(r[i]) for r in rows)) if rows else len(headers[i])
        for i in range(len(headers))
    ]

    def line(cells: list[str]) -> str:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)]
        return "  ".join(cells).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def evaluate_targets(
    source: str, rows: int, s: dict[str, dict[str, Any]], growth: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The issue's targets for ``source``: [{"target", "status" PASS/FAIL/SKIP, "detail"}]."""
    out: list[dict[str, Any]] = []

    def sec(m: str) -> float | None:
        v = s.get(m, {}).get("seconds")
        return v if isinstance(v, (int, float)) and v == v else None

    def add(target: str, ok: bool | None, detail: str) -> None:
        out.append(
            {
                "target": target,
                "status": "SKIP" if ok is None else ("PASS" if ok else "FAIL"),
                "detail": detail,
            }
        )

    def missing(method: str) -> tuple[bool | None, str]:
        """A failed previsio run fails its targets; a method not run or failed otherwise leaves them open."""
        r = s.get(method)
        if r is None:
            return None, f"{method} not measured (see --methods)"
        reason = (r.get("error") or "failed").splitlines()[0][:80]
        return (False if method == "previsio" else None), f"{method} FAILED: {reason}"

    def time_target(target: str, num: str, den: str, factor: float, at_most: bool) -> None:
        a, b = sec(num), sec(den)
        if a is None or b is None:
            add(target, *missing(num if a is None else den))
            return
        ratio = a / b
        ok = ratio <= factor if at_most else ratio >= factor
        add(target, ok, f"{num} {a:.2f} s / {den} {b:.2f} s = {ratio:.2f}x")

    if source == "postgresql":
        time_target("previsio <= 1.25x copy_drain", "previsio", "copy_drain", 1.25, True)
        time_target("previsio <= adbc", "previsio", "adbc", 1.0, True)
        time_target("previsio <= connectorx", "previsio", "connectorx", 1.0, True)
        time_target("pandas >= 4x previsio", "pandas", "previsio", 4.0, False)
    elif source == "mysql":
        time_target("previsio <= 1.2x connectorx", "previsio", "connectorx", 1.2, True)
        time_target("pandas >= 5x previsio", "pandas", "previsio", 5.0, False)
    pv = s.get("previsio", {})
    extra = pv.get("extra", {})
    if "error" in pv or not extra:
        for t in (
            "platform peak RSS during snapshot <= 300 MB",
            "to_pandas <= 1.3x local read",
            "head(100) < 0.5 s",
        ):
            add(t, *missing("previsio"))
    else:
        peak = extra.get("platform_after_hwm_mb_max")
        add(
            "platform peak RSS during snapshot <= 300 MB",
            peak <= 300,
            f"VmHWM {peak:.0f} MB (worst of {pv['ok']} run(s); idle {extra['platform_idle_rss_mb']:.0f} MB)",
        )
        r = _ratio(extra.get("to_pandas_s"), extra.get("local_read_s"))
        add(
            "to_pandas <= 1.3x local read",
            None if r is None else r <= 1.3,
            f"ds.to_pandas() {extra['to_pandas_s']:.3f} s / pq.read_table(local).to_pandas() "
            f"{extra['local_read_s']:.3f} s = {_fmt_num(r)}x",
        )
        h = extra.get("head_first_s")
        add("head(100) < 0.5 s", h < 0.5, f"first call {h:.3f} s, median of 5 {extra['head_median_s']:.3f} s")
    ov = s.get("sdk_overhead", {})
    if "error" in ov or not ov.get("extra"):
        failed, why = missing("sdk_overhead")
        add("SDK overhead <= 1.3x", False if "FAILED" in why else failed, why)
    else:
        e = ov["extra"]
        add(
            "SDK overhead <= 1.3x",
            e["ratio"] <= 1.3,
            f"Connector.from_id {e['sdk_s'] / e['calls'] * 1000:.2f} ms vs bare GET "
            f"{e['raw_s'] / e['calls'] * 1000:.2f} ms = {e['ratio']:.2f}x",
        )
    if growth is not None:
        if growth.get("ratio") is None:
            add("memory growth 1M -> N rows within 20%", None, growth.get("error", "not measured"))
        else:
            add(
                f"memory growth {GROWTH_BASE_ROWS:,} -> {rows:,} rows within 20%",
                growth["ratio"] <= 1.2,
                f"platform VmHWM {growth['base_mb']:.0f} MB -> {growth['full_mb']:.0f} MB = "
                f"{growth['ratio']:.2f}x (above idle: {growth['base_above_idle_mb']:.0f} -> "
                f"{growth['full_above_idle_mb']:.0f} MB)",
            )
    return out


def report(
    args: argparse.Namespace,
    s: dict[str, dict[str, Any]],
    targets: list[dict[str, Any]],
    growth: dict[str, Any] | None,
    header: list[str],
) -> str:
    lines = list(header)
    pv_s = s.get("previsio", {}).get("seconds")
    table_rows = []
    for method in args.method_list:
        if method == "sdk_overhead":
            continue
        r = s.get(method, {})
        label = "previsio upload" if method == "previsio" and args.source == "csv" else method
        if "error" in r or "seconds" not in r:
            reason = (r.get("error") or "not run").splitlines()[0][:60]
            table_rows.append([label, "FAILED", "-", "-", "-", "-", reason])
            continue
        secs = r["seconds"]
        nrows = r.get("rows") or args.rows
        notes = []
        if r.get("rows") is not None and r["rows"] != args.rows:
            notes.append(f"ROWS {r['rows']:,} != {args.rows:,}")
        extra = r.get("extra", {})
        if method == "previsio":
            notes.append(
                f"platform VmHWM (idle: RSS {extra['platform_idle_rss_mb']:.0f}, HWM "
                f"{extra['platform_idle_hwm_mb']:.0f}); SDK process {r['worker_maxrss_mb']:.0f} MB"
            )
            if extra.get("server_job_s") is not None:
                notes.append(f"job {extra['server_job_s']:.2f} s on the platform")
        if "copy_bytes" in extra:
            notes.append(f"{extra['copy_bytes'] / 2**20:.0f} MB on the wire")
        elif extra.get("parquet_mb") is not None:
            notes.append(f"{extra['parquet_mb']:.0f} MB parquet")
        table_rows.append(
            [
                label,
                _fmt_num(secs),
                f"{nrows / secs:,.0f}",
                f"{r['peak_rss_mb']:.0f}",
                _fmt_num(_ratio(secs, pv_s)) + "x" if pv_s else "-",
                _fmt_num(_ratio(pv_s, secs)) + "x" if pv_s else "-",
                "; ".join(notes),
            ]
        )
    lines.append(
        render_table(
            ["method", "wall s", "rows/s", "peak RSS MB", "x/previsio", "previsio/x", "notes"],
            table_rows,
            right={1, 2, 3, 4, 5},
        )
    )
    lines.append("")
    extra_start = len(lines)
    pv = s.get("previsio", {})
    e = pv.get("extra") or {}
    if e:
        lines.append(
            f"to_pandas:  ds.to_pandas() {e['to_pandas_s']:.3f} s vs "
            f"pq.read_table(local copy).to_pandas() {e['local_read_s']:.3f} s = "
            f"{_fmt_num(_ratio(e['to_pandas_s'], e['local_read_s']))}x "
            f"(ds.to_arrow() {e['to_arrow_s']:.3f} s, ds.download() {e['download_s']:.3f} s)"
        )
        lines.append(
            f"head(100):  first call {e['head_first_s']:.3f} s, median of 5 {e['head_median_s']:.3f} s"
        )
    ov = s.get("sdk_overhead", {})
    if ov.get("extra"):
        o = ov["extra"]
        lines.append(
            f"SDK overhead: {o['calls']} x Connector.from_id {o['sdk_s']:.2f} s "
            f"({o['sdk_s'] / o['calls'] * 1000:.2f} ms/call) vs {o['calls']} x bare requests GET "
            f"{o['raw_s']:.2f} s ({o['raw_s'] / o['calls'] * 1000:.2f} ms/call) = {o['ratio']:.2f}x"
        )
    elif "sdk_overhead" in args.method_list:
        lines.append(f"SDK overhead: FAILED {ov.get('error', '')}")
    if growth is not None:
        if growth.get("ratio") is not None:
            lines.append(
                f"memory growth: platform VmHWM at {GROWTH_BASE_ROWS:,} rows "
                f"{growth['base_mb']:.0f} MB, at {args.rows:,} rows {growth['full_mb']:.0f} MB = "
                f"{growth['ratio']:.2f}x"
            )
        else:
            lines.append(f"memory growth: {growth.get('error')}")
    if len(lines) > extra_start:
        lines.append("")
    title = f"targets ({SOURCE_TITLES[args.source]}"
    stated = {"postgresql": 5_000_000, "mysql": 2_000_000}.get(args.source)
    if stated and stated != args.rows:
        title += f"; the issue states the speed targets for {stated:,} rows, this run has {args.rows:,}"
    if args.source in ("sqlite", "csv"):
        title += "; the issue sets no speed target for this source"
    lines.append(title + ")")
    width = max((len(t["target"]) for t in targets), default=0)
    for t in targets:
        lines.append(f"  {t['status']:<4}  {t['target']:<{width}}  {t['detail']}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", choices=SOURCES, default="postgresql")
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method; medians are reported")
    parser.add_argument(
        "--methods",
        default="",
        help="comma-separated subset of: " + "; ".join(f"{k}: {','.join(v)}" for k, v in METHODS.items()),
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the benchmark table/file afterwards (default: drop it once measured)",
    )
    parser.add_argument(
        "--memory-growth",
        action="store_true",
        help=f"also snapshot {GROWTH_BASE_ROWS:,} rows with previsio and compare peak RSS",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed to each worker")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is None:
        if args.rows < 1:
            parser.error("--rows must be positive")
        if args.repeat < 1:
            parser.error("--repeat must be at least 1")
        known = METHODS[args.source]
        if args.methods:
            chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
            unknown = [m for m in chosen if m not in known]
            if unknown:
                parser.error(
                    f"unknown method(s) for {args.source}: {', '.join(unknown)}; "
                    f"choose among {', '.join(known)}"
                )
            args.method_list = [m for m in known if m in chosen]
        else:
            args.method_list = list(known)
    return args


def _spec(args: argparse.Namespace, method: str, rows: int) -> dict[str, Any]:
    return {
        "source": args.source,
        "rows": rows,
        "table": table_name(rows),
        "method": method,
        "sqlite_path": str(sqlite_path(rows)),
        "csv_path": str(csv_path(rows)),
    }


def _run_one(args: argparse.Namespace, method: str, rows: int, label: str) -> dict[str, Any]:
    started = time.monotonic()
    r = run_worker(_spec(args, method, rows), args.timeout)
    took = time.monotonic() - started
    if "error" in r:
        _log(f"{label} {method}: FAILED after {took:.0f} s: {r['error']}")
    else:
        _log(f"{label} {method}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
    return r


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker)
        return 0

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: worker killed, platform stopped

    signal.signal(signal.SIGTERM, interrupted)
    created: list[int] = []
    try:
        sizes = [args.rows]
        if args.memory_growth and args.rows != GROWTH_BASE_ROWS:
            sizes.append(GROWTH_BASE_ROWS)
        for rows in sizes:
            ensure_source(args.source, rows)
            created.append(rows)
        import connectorx
        import pandas
        import pyarrow

        import previsio_sdk

        started_at = datetime.now(timezone.utc)
        where = {
            "postgresql": f"table {table_name(args.rows)} of database {DB_NAME}",
            "mysql": f"table {table_name(args.rows)} of database {DB_NAME}",
            "sqlite": str(sqlite_path(args.rows)),
            "csv": str(csv_path(args.rows)),
        }[args.source]
        header = [
            f"previsio snapshot benchmark - {SOURCE_TITLES[args.source]}, {args.rows:,} rows ({where})",
            f"{started_at:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; Python {pyplatform.python_version()}; "
            f"previsio_sdk {previsio_sdk.__version__}; pyarrow {pyarrow.__version__}; "
            f"pandas {pandas.__version__}; connectorx {connectorx.__version__}; "
            f"{server_version(args.source, args.rows)}",
            f"wall s and peak RSS: medians of {args.repeat} run(s), each method in its own subprocess; "
            "x/previsio = method time / previsio time",
            "",
        ]
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.method_list}
        for rep in range(args.repeat):
            for method in args.method_list:
                runs[method].append(_run_one(args, method, args.rows, f"[{rep + 1}/{args.repeat}]"))
        summary = {m: summarize(r) for m, r in runs.items()}

        growth: dict[str, Any] | None = None
        if args.memory_growth:
            growth = {}
            full = [r for r in runs.get("previsio", []) if "error" not in r]
            if not full:
                full = [
                    r
                    for r in (
                        _run_one(args, "previsio", args.rows, f"[growth {i + 1}/{args.repeat}]")
                        for i in range(args.repeat)
                    )
                    if "error" not in r
                ]
            base = []
            for i in range(args.repeat):
                r = _run_one(
                    args,
                    "previsio",
                    GROWTH_BASE_ROWS,
                    f"[growth {GROWTH_BASE_ROWS:,} rows {i + 1}/{args.repeat}]",
                )
                if "error" not in r:
                    base.append(r)
            if full and base:
                base_mb = max(r["peak_rss_mb"] for r in base)
                full_mb = max(r["peak_rss_mb"] for r in full)
                base_idle = _median([r["extra"]["platform_idle_rss_mb"] for r in base])
                full_idle = _median([r["extra"]["platform_idle_rss_mb"] for r in full])
                growth = {
                    "base_rows": GROWTH_BASE_ROWS,
                    "rows": args.rows,
                    "base_mb": base_mb,
                    "full_mb": full_mb,
                    "ratio": full_mb / base_mb,
                    "base_above_idle_mb": base_mb - base_idle,
                    "full_above_idle_mb": full_mb - full_idle,
                }
                if args.rows == GROWTH_BASE_ROWS:
                    growth["note"] = f"--rows is {GROWTH_BASE_ROWS:,}: compare a bigger --rows"
            else:
                growth = {"ratio": None, "error": "a previsio run failed"}

        targets = evaluate_targets(args.source, args.rows, summary, growth)
        text = report(args, summary, targets, growth, header)
        print(text)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        result_path = RESULTS_DIR / f"{args.source}-{args.rows}.json"
        result_path.write_text(
            json.dumps(
                {
                    "source": args.source,
                    "rows": args.rows,
                    "repeat": args.repeat,
                    "methods": args.method_list,
                    "started_at": started_at.isoformat(),
                    "header": header,
                    "runs": runs,
                    "summary": summary,
                    "targets": targets,
                    "memory_growth": growth,
                    "report": text,
                },
                indent=2,
                default=str,
            )
        )
        print(f"\nresults written to {result_path.relative_to(HERE.parent)}")
        return 1 if any("error" in r for rs in runs.values() for r in rs) else 0
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if not args.keep:
            for rows in created:
                try:
                    drop_source(args.source, rows)
                except Exception as exc:  # noqa: BLE001 - cleanup must not hide the result
                    _log(f"could not drop the {args.source} data of {rows} rows: {exc}")


if __name__ == "__main__":
    sys.exit(main())
