#!/usr/bin/env python
"""Cluster benchmark: the platform as a cluster (PostgreSQL metadata, S3 store, Celery workers on Redis)
against the embedded platform, measured in one run.

Usage (from the repository root, with the project's virtualenv; the local PostgreSQL and Redis servers)::

    .venv/bin/python benchmarks/cluster.py                      # 5M-row snapshot, 16 x 1M, GET latency
    .venv/bin/python benchmarks/cluster.py --rows 1000000 --fanout-rows 200000 --repeat 1   # a quick look

It prints three tables:

1. one big PostgreSQL snapshot, cluster vs embedded (median of ``--repeat``; the target is 1.15x);
2. 16 snapshots of ``--fanout-rows`` rows with one worker vs two (the speed-up, and what bounds it);
3. p50/p99 latency of ``GET`` calls from 50 concurrent clients while 4 snapshots run, embedded vs cluster.

The cluster's object store is moto's S3 server (a Python process of this machine): an anchor for correctness,
not for speed; a real object store moves bytes faster. Every process runs on this machine's cores, so the
two-worker speed-up is bounded by them (see the printed note).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

import previsio_sdk as pio  # noqa: E402

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
DB = "previsio_bench_cluster"


def prepare_source(rows: int, fanout_rows: int) -> None:
    """The benchmark's database with ``big`` (``rows``) and ``small`` (``fanout_rows``) tables."""
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(**PG, dbname=DB, autocommit=True) as c:
        for name, n in (("big", rows), ("small", fanout_rows)):
            c.execute(
                f"CREATE TABLE {name} AS SELECT g AS id, g * 1.25 AS amount, md5(g::text) AS digest, "
                f"now() - g * interval '1 second' AS at FROM generate_series(1, {n}) g"
            )
            c.execute(f"VACUUM ANALYZE {name}")


def _project(client: pio.Client, name: str) -> tuple[Any, Any, Any]:
    project = pio.Project.new(f"{name}-{time.time_ns()}", client=client)
    pg = project.create_sql_connector(
        "pg", host=PG["host"], port=PG["port"], username=PG["user"], password="x", database=DB
    )
    big = project.create_datasource(pg, "big", table="big")
    small = project.create_datasource(pg, "small", table="small")
    return project, big, small


def time_big(client: pio.Client, repeat: int, label: str) -> float:
    """Median seconds of a snapshot of ``big``, end to end through the SDK."""
    project, big, _small = _project(client, label)
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        project.create_dataset(f"big{i}", datasource=big, progress=False)
        times.append(time.perf_counter() - start)
    project.delete()
    return statistics.median(times)


def time_fanout(client: pio.Client, count: int) -> float:
    """Seconds for ``count`` snapshots of ``small`` sent at once, until the last is done."""
    project, _big, small = _project(client, "fanout")
    start = time.perf_counter()
    jobs = [project.create_dataset(f"s{i}", datasource=small, wait=False) for i in range(count)]
    for job in jobs:
        job.wait(progress=False)
    elapsed = time.perf_counter() - start
    project.delete()
    return elapsed


def latency_under_load(
    client: pio.Client, url: str, token: str, clients: int = 50, per_client: int = 20
) -> tuple[float, float]:
    """p50 and p99 seconds of GET calls from ``clients`` concurrent clients while 4 big snapshots run."""
    project, big, _small = _project(client, "latency")
    jobs = [project.create_dataset(f"l{i}", datasource=big, wait=False) for i in range(4)]
    time.sleep(1.0)
    samples: list[float] = []
    lock = threading.Lock()

    def one_client(_: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        mine = []
        for _ in range(per_client):
            start = time.perf_counter()
            resp = session.get(f"{url}/api/v1/projects/{project.id}/datasources", timeout=60)
            mine.append(time.perf_counter() - start)
            assert resp.status_code == 200, resp.text
        with lock:
            samples.extend(mine)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one_client, range(clients)))
    for job in jobs:
        job.wait(progress=False)
    project.delete()
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--fanout-rows", type=int, default=1_000_000)
    parser.add_argument("--fanout", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from cluster import start_cluster  # tests/integration/cluster.py
    from conftest import start_platform, stop_platform
    from fileservers import start_s3, stop_process

    prepare_source(args.rows, args.fanout_rows)
    base = Path(tempfile.mkdtemp(prefix="previsio-bench-cluster-"))
    s3 = start_s3(base)
    embedded = start_platform(base / "embedded")
    cluster = start_cluster(base / "cluster", s3, lease_seconds=30)
    try:
        cluster.start_replica()
        cluster.start_worker(concurrency=2)
        e_client, c_client = embedded.client(), cluster.client(0)
        print(f"== 1. one snapshot of {args.rows:,} PostgreSQL rows (median of {args.repeat})")
        e_big = time_big(e_client, args.repeat, "e-big")
        c_big = time_big(c_client, args.repeat, "c-big")
        print(f"{'embedded':<12}{e_big:8.2f} s   1.00x")
        print(f"{'cluster':<12}{c_big:8.2f} s   {c_big / e_big:.2f}x   (target <= 1.15x)")

        print(f"\n== 2. {args.fanout} snapshots of {args.fanout_rows:,} rows, cluster, one worker vs two")
        one = time_fanout(c_client, args.fanout)
        cluster.start_worker(concurrency=2)
        two = time_fanout(c_client, args.fanout)
        print(f"{'1 worker':<12}{one:8.2f} s   1.00x")
        print(f"{'2 workers':<12}{two:8.2f} s   speed-up {one / two:.2f}x")
        print(
            "   bound: PostgreSQL, moto and the workers"
            + chr(39)
            + " job children share this machine"
            + chr(39)
            + "s cores"
        )

        print("\n== 3. GET latency, 50 concurrent clients, while 4 snapshots run")
        e50, e99 = latency_under_load(e_client, embedded.url, embedded.token)
        c50, c99 = latency_under_load(c_client, cluster.replicas[0].url or "", cluster.token)
        print(f"{'embedded':<12}p50 {e50 * 1000:7.1f} ms   p99 {e99 * 1000:7.1f} ms")
        print(f"{'cluster':<12}p50 {c50 * 1000:7.1f} ms   p99 {c99 * 1000:7.1f} ms")
    finally:
        cluster.close()
        stop_platform(embedded)
        stop_process(s3.process)
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
