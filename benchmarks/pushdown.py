#!/usr/bin/env python
"""Pushdown benchmark: ``to_pandas(columns=, filters=)`` against a full load, on a 5M-row dataset.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python benchmarks/pushdown.py --rows 5000000 --repeat 3

Starts a platform in a fresh temporary home, uploads a generated dataset (sorted ``id``, so the row groups'
statistics tell which ones a filter on ``id`` can skip), then times each load twice: from the file the local
platform shares (read in place) and as a remote client would (HTTP: a full download, or range requests for
only the needed column chunks). Prints the median of ``--repeat`` runs and the ratio to the full load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import previsio_sdk as pio
from previsio_sdk.local import ensure_local_platform, stop_local_platform


def make_file(path: Path, rows: int) -> None:
    """Write ``rows`` rows of a sales-like table (7 columns) to a Parquet file."""
    rng = np.random.default_rng(20261201)
    countries = np.array(["FR", "DE", "ES", "IT", "GB", "US", "CA", "JP"])
    statuses = np.array(["delivered", "shipped", "pending", "cancelled"])
    table = pa.table(
        {
            "id": np.arange(rows, dtype=np.int64),
            "customer_id": rng.integers(1, 100_000, rows),
            "country": countries[rng.integers(0, len(countries), rows)],
            "amount": rng.uniform(5, 500, rows).round(2),
            "quantity": rng.integers(1, 10, rows, dtype=np.int32),
            "status": statuses[rng.integers(0, len(statuses), rows)],
            "ordered_at": pa.array(
                np.datetime64("2024-01-01") + rng.integers(0, 365 * 86400, rows).astype("timedelta64[s]")
            ),
        }
    )
    pq.write_table(table, path)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, int]:
    """Median seconds of ``repeat`` calls, and the row count of the last result."""
    times = []
    result: Any = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="previsio-pushdown-") as tmp:
        home = Path(tmp) / "home"
        url, token = ensure_local_platform(home)
        try:
            source = Path(tmp) / "sales.parquet"
            make_file(source, args.rows)
            client = pio.Client(url, token)
            project = pio.Project.new("pushdown", client=client)
            dataset = project.create_dataset("sales", file_name=source, progress=False)
            print(f"{dataset!r}")
            cases = {
                "full load": {},
                "2 of 7 columns": {"columns": ["id", "amount"]},
                "id < 5% (filter)": {"filters": [("id", "<", args.rows // 20)]},
                "2 columns, id < 5%": {
                    "columns": ["id", "amount"],
                    "filters": [("id", "<", args.rows // 20)],
                },
            }
            for where, shares in (("local platform (file read in place)", True), ("remote (HTTP)", False)):
                client.may_share_files = shares
                print(f"\n{where}")
                base = None
                for name, kwargs in cases.items():
                    seconds, rows = timed(
                        lambda kw=kwargs: dataset.to_pandas(progress=False, **kw), args.repeat
                    )
                    base = base or seconds
                    print(f"  {name:<22} {rows:>10,} rows  {seconds:7.3f} s  {seconds / base:6.2f}x")
        finally:
            stop_local_platform(home)


if __name__ == "__main__":
    main()
