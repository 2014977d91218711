#!/usr/bin/env python
"""Migration benchmark: time and peak memory of ``project.migrate(to=...)`` between two local platforms.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python benchmarks/migrate.py --rows 1000000

Two embedded platforms are started in two fresh temporary homes (two ports). A Parquet file of ``--rows``
rows and 7 columns is uploaded to a project of the first one, with an SQLite connector and datasource for
lineage; then the project is migrated to the second platform. The peak resident memory (``VmHWM``) of this
process and of both platforms is reset just before the migration (``/proc/<pid>/clear_refs``), so the peaks
printed are the migration's own. The result is printed as JSON and written to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import previsio_sdk as pio
from previsio_sdk.local import ensure_local_platform, stop_local_platform

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _status(pid: int | str, key: str) -> int:
    """A ``/proc/<pid>/status`` memory line, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    raise KeyError(key)


def _reset_peak(pid: int | str) -> None:
    """Reset the peak RSS of a process to its current RSS (Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _make_parquet(path: Path, rows: int) -> None:
    rng = np.random.default_rng(7)
    cities = np.array(["Paris", "Lyon", "Nantes", "Lille", "Bordeaux", "Nice"])
    writer = None
    step = 250_000
    for start in range(0, rows, step):
        n = min(step, rows - start)
        table = pa.table(
            {
                "id": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "amount": pa.array(rng.random(n) * 1000),
                "quantity": pa.array(rng.integers(1, 50, n, dtype=np.int32)),
                "customer": pa.array([f"customer-{i % 50_000}" for i in range(start, start + n)]),
                "city": pa.array(cities[rng.integers(0, len(cities), n)]),
                "paid": pa.array(rng.random(n) < 0.8),
                "at": pa.array(
                    np.datetime64("2024-01-01", "us")
                    + rng.integers(0, 365 * 86_400_000_000, n).astype("m8[us]")
                ),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="previsio-bench-migrate-") as tmp_dir:
        tmp = Path(tmp_dir)
        homes = [tmp / "source-home", tmp / "target-home"]
        try:
            clients = [pio.Client(*ensure_local_platform(home)) for home in homes]
            pids = [json.loads((home / "platform.json").read_text())["pid"] for home in homes]
            data = tmp / "orders.parquet"
            _make_parquet(data, args.rows)
            db = tmp / "shop.db"
            con = sqlite3.connect(db)
            con.execute("CREATE TABLE orders (id INTEGER, amount REAL)")
            con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 1.5) for i in range(1000)])
            con.commit()
            con.close()

            source = pio.Project.new("bench-migrate", client=clients[0])
            source.add_connectors({"shop": {"driver": "sqlite", "database": str(db)}})
            src = source.create_datasource(source.connectors["shop"], "orders_db", table="orders")
            source.create_dataset("orders_small", datasource=src, progress=False)
            big = source.create_dataset("orders_big", file_name=data, progress=False)

            for pid in ["self", *pids]:
                _reset_peak(pid)
            rss_before = [_status(pid, "VmRSS") for pid in ["self", *pids]]
            started = time.perf_counter()
            target = source.migrate(to=clients[1])
            elapsed = time.perf_counter() - started
            peaks = [_status(pid, "VmHWM") for pid in ["self", *pids]]

            copied = {d.name: d for d in target.list_datasets()}
            assert copied["orders_big"].num_rows == args.rows == big.num_rows
            assert copied["orders_small"].datasource_id is not None
            result = {
                "benchmark": "migrate",
                "rows": args.rows,
                "columns": len(big.schema),
                "parquet_bytes": big.size_bytes,
                "seconds": round(elapsed, 2),
                "rows_per_second": round(args.rows / elapsed),
                "sdk_rss_before_mib": rss_before[0],
                "sdk_peak_rss_mib": peaks[0],
                "source_platform_rss_before_mib": rss_before[1],
                "source_platform_peak_rss_mib": peaks[1],
                "target_platform_rss_before_mib": rss_before[2],
                "target_platform_peak_rss_mib": peaks[2],
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
        finally:
            for home in homes:
                stop_local_platform(home)
    print(json.dumps(result, indent=2))
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / f"migrate-{args.rows}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
