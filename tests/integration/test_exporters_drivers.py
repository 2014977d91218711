"""Drivers' writes, called directly against the real servers: a stream that breaks after rows were sent.

The platform's exports reach the drivers through :meth:`Driver.write`; here a test calls it in-process with a
stream that fails after several batches, which the SDK cannot produce at will, and checks that the destination
is exactly as it was: no row, no staging table, no temporary file, no multipart upload.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from conftest import MY_HOST, MY_PORT, MY_SUPERUSER, PG_HOST, PG_PORT, PG_SUPERUSER, _mysql_root
from fileservers import LOCAL_ROOTS_DIR, FileServers, session_file_servers

from previsio_sdk.server.drivers import (
    ConnectorConfig,
    DestinationSpec,
    Driver,
    WriteMode,
    driver_class,
    sql_write,
)


class StreamBroke(RuntimeError):
    """The failure injected in the middle of a stream."""


def batches(n: int, size: int = 1000, first: int = 100) -> list[pa.RecordBatch]:
    out = []
    for b in range(n):
        ids = list(range(first + b * size, first + (b + 1) * size))
        out.append(pa.record_batch({"id": pa.array(ids, pa.int64()), "name": [f"row {i}" for i in ids]}))
    return out


def breaking(good: int) -> pa.RecordBatchReader:
    """``good`` batches of 1,000 rows, then :class:`StreamBroke`."""
    schema = batches(1)[0].schema

    def gen() -> Iterator[pa.RecordBatch]:
        yield from batches(good)
        raise StreamBroke("the stream broke after some batches")

    return pa.RecordBatchReader.from_batches(schema, gen())


def steady(n: int) -> pa.RecordBatchReader:
    found = batches(n)
    return pa.RecordBatchReader.from_batches(found[0].schema, iter(found))


def two_rows() -> pa.RecordBatchReader:
    batch = pa.record_batch({"id": pa.array([1, 2], pa.int64()), "name": ["a", "b"]})
    return pa.RecordBatchReader.from_batches(batch.schema, iter([batch]))


# -- SQL -----------------------------------------------------------------------------------------------------
def sql_driver(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Driver, Any]:
    """An SQL driver writing as the database's superuser, and a function running SQL to check on it."""
    cls = driver_class("sql")
    if kind == "postgresql":
        database = request.getfixturevalue("pg_database")
        config = ConnectorConfig(
            type="sql", driver=kind, host=PG_HOST, port=PG_PORT, username=PG_SUPERUSER, database=database
        )

        def run(sql: str) -> list[Any]:
            with psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname=database, autocommit=True
            ) as c:
                cur = c.execute(sql)
                return cur.fetchall() if cur.description else []

    elif kind == "mysql":
        database = request.getfixturevalue("my_database")
        config = ConnectorConfig(
            type="sql", driver=kind, host=MY_HOST, port=MY_PORT, username=MY_SUPERUSER, database=database
        )

        def run(sql: str) -> list[Any]:
            con = _mysql_root(database)
            try:
                with con.cursor() as cur:
                    cur.execute(sql)
                    return list(cur.fetchall())
            finally:
                con.close()

    else:
        path = tmp_path / "w.db"
        sqlite3.connect(path).close()
        config = ConnectorConfig(type="sql", driver="sqlite", database=str(path))

        def run(sql: str) -> list[Any]:
            con = sqlite3.connect(path)
            try:
                return con.execute(sql).fetchall()
            finally:
                con.close()

    settings = SimpleNamespace(tmp_dir=tmp_path, sqlite_roots=[tmp_path])
    return cls(cls.normalize_config(config), settings=settings), run


def staging_tables(kind: str, run: Any) -> list[Any]:
    if kind == "postgresql":
        return run("SELECT tablename FROM pg_tables WHERE tablename LIKE 'previsio_%'")
    if kind == "mysql":
        return run(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name LIKE 'previsio\\_%'"
        )
    return run("SELECT name FROM sqlite_master WHERE name LIKE 'previsio_%'")


@pytest.fixture(autouse=True)
def small_load_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """MySQL sends each batch in its own LOAD DATA statement: rows reach the server before the failure."""
    monkeypatch.setattr(sql_write, "LOAD_DATA_CHUNK_BYTES", 1)


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite"])
@pytest.mark.parametrize("mode", ["replace", "append", "upsert"])
def test_a_broken_stream_leaves_the_table_as_it_was(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str, mode: str
) -> None:
    """Three batches written, then the stream fails: its own error comes out, the table keeps its two rows,
    and no staging table is left behind."""
    driver, run = sql_driver(kind, request, tmp_path)
    table = f"broken_{uuid.uuid4().hex[:8]}"
    dest = DestinationSpec(table=table)
    driver.write(dest, two_rows(), WriteMode.replace, None)
    key = ["id"] if mode == "upsert" else None
    with pytest.raises(StreamBroke):
        driver.write(dest, breaking(3), WriteMode(mode), key)
    assert run(f"SELECT id, name FROM {table} ORDER BY id") == [(1, "a"), (2, "b")]
    assert staging_tables(kind, run) == []


@pytest.mark.parametrize("kind", ["postgresql", "mysql", "sqlite"])
def test_a_broken_stream_creates_no_table(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> None:
    """An export that would have created its table fails before the end: there is no table afterwards."""
    driver, run = sql_driver(kind, request, tmp_path)
    table = f"never_{uuid.uuid4().hex[:8]}"
    with pytest.raises(StreamBroke):
        driver.write(DestinationSpec(table=table), breaking(2), WriteMode.append, None)
    assert staging_tables(kind, run) == []
    with pytest.raises(Exception):  # noqa: B017 - each database has its own "no such table" error
        run(f"SELECT * FROM {table}")


def test_mysql_without_local_files_writes_multi_row_inserts(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When LOAD DATA LOCAL is not available, rows go in multi-row INSERTs, still all or nothing."""
    monkeypatch.setattr(driver_class("sql"), "mysql_load_data", False)
    driver, run = sql_driver("mysql", request, tmp_path)
    table = f"inserted_{uuid.uuid4().hex[:8]}"
    result = driver.write(DestinationSpec(table=table), steady(25), WriteMode.replace, None)
    assert result.rows == 25_000
    assert run(f"SELECT COUNT(*), MIN(id), MAX(id) FROM {table}") == [(25_000, 100, 25_099)]
    with pytest.raises(StreamBroke):
        driver.write(DestinationSpec(table=table), breaking(12), WriteMode.append, None)
    assert run(f"SELECT COUNT(*) FROM {table}") == [(25_000,)]


# -- files ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> FileServers:
    return session_file_servers(tmp_path_factory.getbasetemp())


def file_driver(kind: str, servers: FileServers, tmp_path: Path) -> tuple[Driver, str | None]:
    """A driver of ``kind`` allowed to write to the test servers, and the bucket to write in (S3)."""
    settings = SimpleNamespace(local_roots=[servers.files_root.parent], tmp_dir=tmp_path)
    if kind == "local":
        config = ConnectorConfig(type="local", options={"root": str(servers.files_root)})
    elif kind == "ftp":
        f = servers.ftp
        config = ConnectorConfig(
            type="ftp", host=f.host, port=f.port, username=f.writer, secrets={"password": f.writer_password}
        )
    elif kind == "sftp":
        t = servers.sftp
        config = ConnectorConfig(
            type="sftp", host=t.host, port=t.port, username=t.username, secrets={"password": t.password}
        )
    else:
        b = servers.s3
        config = ConnectorConfig(
            type="s3",
            host=b.endpoint,
            username=b.access_key,
            options={"region": "us-east-1"},
            secrets={"password": b.secret_key},
        )
    cls = driver_class(kind)
    assert servers.files_root.parent.name == LOCAL_ROOTS_DIR
    return cls(cls.normalize_config(config), settings=settings), servers.s3.bucket if kind == "s3" else None


def listing(kind: str, servers: FileServers, folder: str) -> list[str]:
    if kind == "s3":
        s3 = servers.s3.client()
        found = s3.list_objects_v2(Bucket=servers.s3.bucket, Prefix=folder).get("Contents", [])
        pending = s3.list_multipart_uploads(Bucket=servers.s3.bucket, Prefix=folder).get("Uploads", [])
        return sorted(o["Key"] for o in found) + [f"pending upload {u['Key']}" for u in pending]
    root = servers.files_root / folder
    return sorted(str(p.relative_to(servers.files_root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("kind", ["local", "ftp", "sftp", "s3"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_broken_stream_leaves_no_file(servers: FileServers, tmp_path: Path, kind: str, fmt: str) -> None:
    """A file whose stream breaks after three batches: no file, no temporary file, no directory is left; a
    file being replaced keeps its content."""
    driver, bucket = file_driver(kind, servers, tmp_path)
    folder = f"broken/{uuid.uuid4().hex[:8]}"
    new = driver.normalize_destination(
        DestinationSpec(path=f"{folder}/a/b/new.{fmt}", bucket=bucket), WriteMode.safe, None
    )
    with pytest.raises(StreamBroke):
        driver.write(new, breaking(3), WriteMode.safe, None)
    assert listing(kind, servers, folder) == []

    old = driver.normalize_destination(
        DestinationSpec(path=f"{folder}/old.{fmt}", bucket=bucket), WriteMode.replace, None
    )
    driver.write(old, two_rows(), WriteMode.replace, None)
    before = listing(kind, servers, folder)
    with pytest.raises(StreamBroke):
        driver.write(old, breaking(3), WriteMode.replace, None)
    assert listing(kind, servers, folder) == before == [f"{folder}/old.{fmt}"]
