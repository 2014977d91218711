#!/usr/bin/env python
"""Export benchmark: previsio writing a dataset to PostgreSQL and MariaDB, next to ``DataFrame.to_sql``.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python benchmarks/export.py --rows 1000000
    .venv/bin/python benchmarks/export.py --rows 200000 --targets postgresql --repeat 3

The rows are those of benchmarks/snapshot.py (id, qty, price, label, created_at, flag, maybe: 7 columns, 10 %
NULLs in ``maybe``). previsio runs end to end through the SDK against a local platform started for the run in
a fresh temporary home: the dataset is uploaded first (not timed), then ``exporter.export_dataset`` with a
``replace`` exporter is timed from the request to the finished export (the server's own time is shown too).
pandas writes the same rows from a DataFrame already in memory, with ``to_sql(if_exists="replace")`` through
SQLAlchemy: once with ``method="multi", chunksize=10000`` (on PostgreSQL 9,362 rows per statement, the most
that stays under its 65,535 parameters per statement) and once with the defaults (``executemany``).
Every method writes its own table in database ``previsio_bench``; each table's row count is checked.
"""

from __future__ import annotations

import argparse
import gc
import platform as pyplatform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from snapshot import (  # noqa: E402 - the snapshot benchmark's data and servers
    DB_NAME,
    MY_HOST,
    MY_PASSWORD,
    MY_PORT,
    MY_USER,
    PG_HOST,
    PG_PORT,
    PG_USER,
    BenchError,
    _LocalPlatform,
    _log,
    _mysql_connect,
    generate_batches,
)

TARGETS = ("postgresql", "mysql")
TITLES = {"postgresql": "PostgreSQL", "mysql": "MariaDB"}
METHODS = ("previsio", "pandas_multi", "pandas_default")
NOTES = {
    "previsio": "SDK export_dataset (replace), request to finished export",
    "pandas_multi": 'DataFrame.to_sql(method="multi", chunksize=10000)',
    "pandas_default": "DataFrame.to_sql() defaults (executemany)",
}
#: PostgreSQL refuses a statement of more than 65,535 parameters.
PG_MAX_PARAMETERS = 65_535


def ensure_databases(targets: list[str]) -> None:
    """Create database previsio_bench on each target if it is missing."""
    if "postgresql" in targets:
        import psycopg

        try:
            with psycopg.connect(
                host=PG_HOST,
                port=PG_PORT,
                user=PG_USER,
                dbname="postgres",
                connect_timeout=5,
                autocommit=True,
            ) as admin:
                if (
                    admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
                    is None
                ):
                    admin.execute(f'CREATE DATABASE "{DB_NAME}"')
        except psycopg.OperationalError as exc:
            raise BenchError(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}: {exc}") from None
    if "mysql" in targets:
        conn = _mysql_connect()
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DB_NAME}`")
        conn.close()


def count_rows(target: str, table: str) -> int:
    if target == "postgresql":
        import psycopg

        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DB_NAME) as conn:
            return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # type: ignore[index]
    conn = _mysql_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM `{table}`")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def drop_table(target: str, table: str) -> None:
    if target == "postgresql":
        import psycopg

        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DB_NAME, autocommit=True) as c:
            c.execute(f'DROP TABLE IF EXISTS "{table}"')
        return
    conn = _mysql_connect(DB_NAME)
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS `{table}`")
    conn.close()


def engine_url(target: str) -> str:
    if target == "postgresql":
        return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{DB_NAME}"
    auth = f"{MY_USER}:{MY_PASSWORD}" if MY_PASSWORD else MY_USER
    return f"mysql+pymysql://{auth}@{MY_HOST}:{MY_PORT}/{DB_NAME}?charset=utf8mb4"


# ------------------------------------------------------------------------------------------------------------
# Methods: each returns (seconds, extra) and leaves its table behind for the row count
# ------------------------------------------------------------------------------------------------------------
def run_pandas(target: str, df: Any, table: str, multi: bool) -> tuple[float, dict[str, Any]]:
    import sqlalchemy as sa

    engine = sa.create_engine(engine_url(target))
    chunksize = None
    if multi:
        chunksize = 10_000
        if target == "postgresql":
            chunksize = min(chunksize, PG_MAX_PARAMETERS // len(df.columns))
    try:
        gc.collect()
        t0 = time.perf_counter()
        df.to_sql(
            table,
            engine,
            if_exists="replace",
            index=False,
            method="multi" if multi else None,
            chunksize=chunksize,
        )
        seconds = time.perf_counter() - t0
    finally:
        engine.dispose()
    return seconds, {"chunksize": chunksize}


class PrevisioRunner:
    """One local platform for the whole run, with the dataset uploaded once and one exporter per target."""

    def __init__(self, parquet: Path, targets: list[str]) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="previsio-export-bench-"))
        self.platform = _LocalPlatform(self.home)
        self.parquet = parquet
        self.targets = targets
        self.exporters: dict[str, Any] = {}

    def __enter__(self) -> PrevisioRunner:
        import previsio_sdk as pio

        self.platform.__enter__()
        client = pio.Client(url=self.platform.url, token=self.platform.token)
        project = pio.Project.new("export-bench", client=client)
        t0 = time.perf_counter()
        self.dataset = project.create_dataset("rows", file_name=self.parquet, progress=False)
        _log(f"dataset uploaded ({self.dataset.num_rows:,} rows) in {time.perf_counter() - t0:.1f} s")
        for target in self.targets:
            if target == "postgresql":
                connector = project.create_sql_connector(
                    "pg", host=PG_HOST, port=PG_PORT, username=PG_USER, database=DB_NAME
                )
            else:
                connector = project.create_sql_connector(
                    "my", host=MY_HOST, port=MY_PORT, username=MY_USER, password=MY_PASSWORD, database=DB_NAME
                )
            self.exporters[target] = project.create_exporter(
                connector,
                f"to_{target}",
                table="export_bench_previsio",
                write_mode=pio.ExporterWriteMode.replace,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.platform.__exit__(*exc)
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    def run(self, target: str) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        export = self.exporters[target].export_dataset(self.dataset, progress=False, wait_for_export=True)
        seconds = time.perf_counter() - t0
        return seconds, {"server_seconds": export.duration, "rows": export.rows}


# ------------------------------------------------------------------------------------------------------------
def make_data(rows: int, work: Path) -> tuple[Path, Any]:
    """The benchmark rows as a Parquet file (for the upload) and as a DataFrame (for pandas)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    batches = list(generate_batches(rows))
    table = pa.Table.from_batches(batches)
    # Microsecond timestamps: what a snapshot of the benchmark tables holds, and what both sides write.
    table = table.set_column(4, "created_at", table.column("created_at").cast(pa.timestamp("us")))
    path = work / f"export_{rows}.parquet"
    pq.write_table(table, path)
    df = table.to_pandas()
    return path, df


def format_table(rows: int, results: dict[str, dict[str, list[float]]], extras: dict[str, Any]) -> str:
    lines = [
        f"Export of {rows:,} rows (7 columns) - median of the runs, seconds",
        "",
        f"{'target':<12} {'method':<16} {'seconds':>9} {'rows/s':>11} {'vs previsio':>12}  what",
        "-" * 110,
    ]
    for target, methods in results.items():
        base = statistics.median(methods["previsio"]) if methods.get("previsio") else None
        for method, times in methods.items():
            if not times:
                continue
            median = statistics.median(times)
            ratio = f"{median / base:.1f}x" if base else "-"
            note = NOTES[method]
            server = [s for s in extras.get(target, []) if s is not None]
            if method == "previsio" and server:
                note += f" (platform: {statistics.median(server):.2f} s)"
            speed = f"{rows / median:,.0f}"
            lines.append(f"{TITLES[target]:<12} {method:<16} {median:>9.2f} {speed:>11} {ratio:>12}  {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each method (the table shows medians)")
    parser.add_argument("--keep", action="store_true", help="keep the written tables")
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    methods = [m for m in args.methods.split(",") if m]
    for name in targets:
        if name not in TARGETS:
            parser.error(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
    for name in methods:
        if name not in METHODS:
            parser.error(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    work = Path(tempfile.mkdtemp(prefix="previsio-export-data-"))
    tables = {
        "previsio": "export_bench_previsio",
        "pandas_multi": "export_bench_multi",
        "pandas_default": "export_bench_default",
    }
    try:
        ensure_databases(targets)
        _log(f"generating {args.rows:,} rows...")
        parquet, df = make_data(args.rows, work)
        results: dict[str, dict[str, list[float]]] = {t: {m: [] for m in methods} for t in targets}
        extras: dict[str, Any] = {}
        runner = PrevisioRunner(parquet, targets) if "previsio" in methods else None
        with runner or _Null():
            for run in range(args.repeat):
                for target in targets:
                    for (
                        method
                    ) in methods:  # interleaved: a slow moment of the machine does not hit one method
                        if method == "previsio":
                            assert runner is not None
                            seconds, extra = runner.run(target)
                            extras.setdefault(target, []).append(extra["server_seconds"])
                        else:
                            seconds, extra = run_pandas(target, df, tables[method], method == "pandas_multi")
                        written = count_rows(target, tables[method])
                        if written != args.rows:
                            raise BenchError(f"{method} wrote {written} rows to {target}, not {args.rows}")
                        results[target][method].append(seconds)
                        _log(f"run {run + 1} {target:<10} {method:<15} {seconds:8.2f} s")
        print()
        print(f"machine: {pyplatform.machine()}, {_cpus()} CPUs, Python {pyplatform.python_version()}")
        print(format_table(args.rows, results, extras))
        return 0
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            for target in targets:
                for method in methods:
                    try:
                        drop_table(target, tables[method])
                    except Exception as exc:  # noqa: BLE001 - cleanup must not hide the result
                        _log(f"could not drop {tables[method]} on {target}: {exc}")


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
