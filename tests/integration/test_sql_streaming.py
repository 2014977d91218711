"""Snapshots stream: a million-row PostgreSQL table goes to Parquet without the platform holding it in memory.

The platform's peak resident memory (VmHWM) is read before and after the snapshot, on a platform started for
this module alone so that no other test's peak hides the snapshot's. The rows are made wide (about 400 bytes)
so that the whole table, held at once, would take well over the bound: only a stream stays under it.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow.compute as pc
import pytest
from conftest import (
    PG_HOST,
    PG_PORT,
    PG_SCRAM_PASSWORD,
    PG_SCRAM_USER,
    RunningPlatform,
    start_platform,
    stop_platform,
)

import previsio_sdk as pio

ROWS = 1_000_000
#: Bytes per row of the text column: ROWS of them are 384 MB, held at once.
LABEL_CHARS = 384
MAX_GROWTH_BYTES = 250 * 1024 * 1024


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/{pid}/status")


@pytest.fixture(scope="module")
def own_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """A platform of its own, so that its peak memory is this module's."""
    running = start_platform(tmp_path_factory.mktemp("streaming-home"))
    yield running
    stop_platform(running)


@pytest.fixture(scope="module")
def million_rows(pg_database: str) -> str:
    """A PostgreSQL table of ROWS wide rows, readable by the scram role."""
    table = f"million_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname=pg_database, autocommit=True
    ) as c:
        c.execute(
            f"CREATE UNLOGGED TABLE {table} AS SELECT g::bigint AS id, "
            f"repeat(md5(g::text), {LABEL_CHARS // 32}) AS label, g / 7.0::float8 AS ratio, "
            f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS at "
            f"FROM generate_series(1, {ROWS}) g"
        )
    return table


def test_million_row_snapshot_streams_in_bounded_memory(
    own_platform: RunningPlatform, pg_database: str, million_rows: str, tmp_path: Path
) -> None:
    """A 1,000,000-row snapshot completes, exact, while the platform's peak RSS grows by less than 250 MB."""
    client = own_platform.client()
    project = pio.Project.new(f"it-stream-{uuid.uuid4().hex[:8]}", client=client)
    try:
        connector = project.create_sql_connector(
            "pg",
            host=PG_HOST,
            port=PG_PORT,
            username=PG_SCRAM_USER,
            password=PG_SCRAM_PASSWORD,
            database=pg_database,
        )
        # A small snapshot first, so that the libraries a snapshot loads do not count as its growth.
        warm = project.create_datasource(
            connector, "warm", request=f"SELECT * FROM {million_rows} WHERE id <= 1000"
        )
        assert project.create_dataset("warm", datasource=warm).num_rows == 1000
        pid = own_platform.process.pid
        peak_before = _status_kib(pid, "VmHWM") * 1024

        source = project.create_datasource(connector, "million", table=million_rows)
        started = time.monotonic()
        dataset = project.create_dataset("million", datasource=source, timeout=120)
        elapsed = time.monotonic() - started
        growth = _status_kib(pid, "VmHWM") * 1024 - peak_before
        print(f"snapshot of {ROWS} rows: {elapsed:.1f} s, peak RSS growth {growth / 2**20:.0f} MiB")

        assert dataset.num_rows == ROWS
        assert growth < MAX_GROWTH_BYTES, f"peak RSS grew by {growth / 2**20:.0f} MiB"
        assert [(c.name, c.type) for c in dataset.schema] == [
            ("id", "int64"),
            ("label", "string"),
            ("ratio", "double"),
            ("at", "timestamp[us, tz=UTC]"),
        ]
        path = Path(dataset.download(tmp_path))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == dataset.content_hash
        import pyarrow.parquet as pq

        ids = pq.read_table(path, columns=["id"]).column("id")
        assert pc.sum(ids).as_py() == ROWS * (ROWS + 1) // 2
        assert pc.count_distinct(ids).as_py() == ROWS
    finally:
        project.delete()


def test_a_failed_flush_to_disk_is_raised_not_swallowed(tmp_path, monkeypatch):
    """An fsync error while the dataset file is hashed (ENOSPC, EIO) fails the write instead of vanishing."""
    import errno
    import os

    import pytest

    from previsio_sdk.server.stores import local as storage

    target = tmp_path / "data.parquet"
    target.write_bytes(b"PAR1" * 1000)

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError) as caught:
        storage._hash_and_sync(target)
    assert caught.value.errno == errno.ENOSPC
