"""The SQL drivers, attacked the way an editor of one project with loopback servers of their own would.

Each test names the attack route it closes: a rogue MySQL server asking for the platform's files during an
export; SQLite paths reaching the platform's own files or writing through a read-only request; PostgreSQL
requests leaving their read-only transaction; passwords leaking through connection strings; staging tables
left behind by interrupted exports.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import MY_PASSWORD, MY_USER, RunningPlatform
from rogue_mysql import RogueMySQL

import previsio_sdk as pio
from previsio_sdk.server.drivers import ConnectorConfig, DestinationSpec, WriteMode
from previsio_sdk.server.drivers.base import DriverError
from previsio_sdk.server.drivers.sql import SQLDriver


def _people(n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(n), pa.int64()), "name": [f"person {i}" for i in range(n)]})


def _upload(project: pio.Project, table: pa.Table, tmp_path: Path) -> pio.Dataset:
    name = f"ds_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path)
    return project.create_dataset(name, file_name=path, progress=False)


def _mysql_driver(port: int, database: str) -> SQLDriver:
    config = ConnectorConfig(
        type="sql",
        driver="mysql",
        host="127.0.0.1",
        port=port,
        username=MY_USER,
        database=database,
        secrets={"password": MY_PASSWORD},
    )
    return SQLDriver(SQLDriver.normalize_config(config))


# -- MySQL: LOAD DATA LOCAL INFILE ---------------------------------------------------------------------------
@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file the rogue server asks for, with a recognisable content."""
    path = tmp_path / "secret.key"
    path.write_bytes(b"TOP-SECRET-" + uuid.uuid4().hex.encode())
    return path


@pytest.fixture
def rogue() -> Iterator[list[RogueMySQL]]:
    """The rogue servers a test starts (closed at the end)."""
    started: list[RogueMySQL] = []
    yield started
    for server in started:
        server.close()


def test_rogue_server_asking_for_a_file_gets_nothing_from_a_driver_export(
    my_database: str, secret_file: Path, rogue: list[RogueMySQL]
) -> None:
    """Attack: a rogue MySQL server answers the exporter's first statement with a LOCAL INFILE request for a
    file of the platform. The driver sends no byte of any file and the write fails with a clear error."""
    server = RogueMySQL("hijack", str(secret_file))
    rogue.append(server)
    driver = _mysql_driver(server.port, my_database)
    table = f"rogue_{uuid.uuid4().hex[:8]}"
    reader = pa.RecordBatchReader.from_batches(_people(3).schema, _people(3).to_batches())
    with pytest.raises(DriverError) as info:
        driver.write(DestinationSpec(table=table), reader, WriteMode.replace, None)
    assert "local file" in info.value.message
    assert server.requests == 1
    assert server.received == [b""]  # an empty answer: no data at all


def test_renamed_file_request_gets_only_the_exported_rows(
    my_database: str, my_exec, secret_file: Path, rogue: list[RogueMySQL]
) -> None:
    """Attack: a proxy rewrites the file name of the real server's LOAD DATA LOCAL request to the platform's
    key file. The driver ignores the name: it sends the rows being exported, and nothing else."""
    server = RogueMySQL("rename", str(secret_file))
    rogue.append(server)
    driver = _mysql_driver(server.port, my_database)
    table = f"rogue_{uuid.uuid4().hex[:8]}"
    data = _people(1000)
    result = driver.write(
        DestinationSpec(table=table),
        pa.RecordBatchReader.from_batches(data.schema, data.to_batches()),
        WriteMode.replace,
        None,
    )
    assert result.rows == 1000
    assert server.requests >= 1
    sent = b"".join(server.received)
    assert secret_file.read_bytes() not in sent
    assert sent.count(b"\n") == 1000 and b'"person 999"' in sent
    assert my_exec(f"SELECT COUNT(*) FROM `{table}`") == [(1000,)]


def test_rogue_server_gets_no_platform_file_through_an_export(
    platform: RunningPlatform,
    project: pio.Project,
    my_database: str,
    tmp_path: Path,
    rogue: list[RogueMySQL],
) -> None:
    """Attack (through the platform): an editor points a MySQL connector at their rogue server and exports a
    dataset; the server asks for the platform's secret.key. The export fails and no byte of the file (nor
    of platform.db or admin.token) leaves the platform."""
    key_file = platform.home / "secret.key"
    assert key_file.is_file()
    server = RogueMySQL("hijack", str(key_file))
    rogue.append(server)
    connector = project.create_sql_connector(
        "rogue",
        host="127.0.0.1",
        port=server.port,
        username=MY_USER,
        password=MY_PASSWORD,
        database=my_database,
        driver="mysql",
    )
    exporter = project.create_exporter(
        connector, "out", table=f"rogue_{uuid.uuid4().hex[:8]}", write_mode="replace"
    )
    dataset = _upload(project, _people(5), tmp_path)
    with pytest.raises(pio.JobFailedError) as info:
        exporter.export_dataset(dataset, progress=False)
    assert "local file" in info.value.message
    assert server.requests == 1
    sent = b"".join(server.received)
    assert sent == b""
    for own in ("secret.key", "platform.db", "admin.token"):
        content = (platform.home / own).read_bytes()
        assert content[:64] not in sent or not content
