"""Exporters to files: every file write mode on a local directory and on real FTP, SFTP and S3 servers.

Exports go through the public SDK; what they wrote is checked on disk (the local, FTP and SFTP connectors
share one directory of the test servers) or with boto3 (S3).
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from fileservers import FileServers, make_connector, session_file_servers

import previsio_sdk as pio

#: The file connector types that can be written to.
WRITABLE = ("local", "ftp", "sftp", "s3")


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> FileServers:
    """The session's file servers."""
    return session_file_servers(tmp_path_factory.getbasetemp())


@pytest.fixture
def folder() -> str:
    """A directory (a key prefix on S3) no other test writes in."""
    return f"exports/{uuid.uuid4().hex[:10]}"


def writer(project: pio.Project, kind: str, servers: FileServers) -> pio.FileConnector:
    """A connector of ``kind`` allowed to write (FTP: the server's writing user)."""
    if kind == "ftp":
        f = servers.ftp
        return project.create_ftp_connector(
            "ftp-writer", host=f.host, port=f.port, username=f.writer, password=f.writer_password
        )
    return make_connector(project, kind, servers, name=f"{kind}-writer")


def bucket(kind: str, servers: FileServers) -> dict[str, str]:
    """The bucket argument of a destination of ``kind``."""
    return {"bucket": servers.s3.bucket} if kind == "s3" else {}


def files_in(kind: str, servers: FileServers, folder: str) -> dict[str, bytes]:
    """Every file below ``folder`` (relative path -> content), read without the platform."""
    if kind == "s3":
        s3 = servers.s3.client()
        listing = s3.list_objects_v2(Bucket=servers.s3.bucket, Prefix=f"{folder}/").get("Contents", [])
        return {
            o["Key"][len(folder) + 1 :]: s3.get_object(Bucket=servers.s3.bucket, Key=o["Key"])["Body"].read()
            for o in listing
        }
    root = servers.files_root / folder
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def upload(project: pio.Project, table: pa.Table, tmp_path: Path) -> pio.Dataset:
    """A dataset holding ``table`` exactly."""
    name = f"ds_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path)
    return project.create_dataset(name, file_name=path, progress=False)


def orders(n: int = 3, first: int = 1) -> pa.Table:
    ids = list(range(first, first + n))
    return pa.table({"id": pa.array(ids, pa.int64()), "customer": [f"customer {i}" for i in ids]})


def csv_rows(data: bytes) -> list[dict[str, object]]:
    return pacsv.read_csv(io.BytesIO(data)).to_pylist()


# -- the write modes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", WRITABLE)
def test_safe_writes_the_file_then_never_overwrites_it(
    project: pio.Project, servers: FileServers, kind: str, folder: str, tmp_path: Path
) -> None:
    """safe writes a new file (creating its directories); the next export fails with destination_exists and
    leaves the file as it was."""
    connector = writer(project, kind, servers)
    exporter = project.create_exporter(
        connector, "out", path=f"{folder}/daily/orders.csv", **bucket(kind, servers)
    )
    assert exporter.write_mode is pio.ExporterWriteMode.safe
    export = exporter.export_dataset(
        upload(project, orders(3), tmp_path), progress=False, wait_for_export=True
    )
    assert (export.status, export.rows, export.destination) == ("succeeded", 3, f"{folder}/daily/orders.csv")
    written = files_in(kind, servers, folder)
    assert list(written) == ["daily/orders.csv"]
    assert [r["id"] for r in csv_rows(written["daily/orders.csv"])] == [1, 2, 3]

    with pytest.raises(pio.JobFailedError) as info:
        exporter.export_dataset(
            upload(project, orders(5, first=10), tmp_path), progress=False, wait_for_export=True
        )
    assert info.value.code == "destination_exists"
    assert files_in(kind, servers, folder) == written


@pytest.mark.parametrize("kind", WRITABLE)
def test_replace_overwrites_the_file(
    project: pio.Project, servers: FileServers, kind: str, folder: str, tmp_path: Path
) -> None:
    """replace writes the file, then overwrites it with the next export's rows."""
    connector = writer(project, kind, servers)
    exporter = project.create_exporter(
        connector, "out", path=f"{folder}/orders.parquet", write_mode="replace", **bucket(kind, servers)
    )
    exporter.export_dataset(upload(project, orders(3), tmp_path), progress=False, wait_for_export=True)
    exporter.export_dataset(
        upload(project, orders(2, first=100), tmp_path), progress=False, wait_for_export=True
    )
    written = files_in(kind, servers, folder)
    assert list(written) == ["orders.parquet"]
    assert pq.read_table(io.BytesIO(written["orders.parquet"])).column("id").to_pylist() == [100, 101]


@pytest.mark.parametrize("kind", WRITABLE)
def test_timestamp_writes_a_new_file_named_after_the_export_time(
    project: pio.Project, servers: FileServers, kind: str, folder: str, tmp_path: Path
) -> None:
    """timestamp writes orders_<UTC time>.csv each time, even twice in the same second, never overwriting."""
    connector = writer(project, kind, servers)
    exporter = project.create_exporter(
        connector, "out", path=f"{folder}/orders.csv", write_mode="timestamp", **bucket(kind, servers)
    )
    dataset = upload(project, orders(2), tmp_path)
    first = exporter.export_dataset(dataset, progress=False, wait_for_export=True)
    second = exporter.export_dataset(dataset, progress=False, wait_for_export=True)
    pattern = re.compile(rf"^{folder}/orders_(\d{{8}}T\d{{6}}Z)(-\d+)?\.csv$")
    stamps = [pattern.match(e.destination or "") for e in (first, second)]
    assert all(stamps), (first.destination, second.destination)
    when = datetime.strptime(stamps[0].group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)  # type: ignore[union-attr]
    assert first.started_at is not None and abs((when - first.started_at).total_seconds()) < 5
    assert first.destination != second.destination
    written = files_in(kind, servers, folder)
    assert sorted(written) == sorted(e.destination[len(folder) + 1 :] for e in (first, second))  # type: ignore[index]


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_table_write_modes_are_refused_for_files(
    project: pio.Project, servers: FileServers, mode: str
) -> None:
    """A table mode on a file destination is a ValidationError at creation."""
    connector = writer(project, "local", servers)
    key = ["id"] if mode == "upsert" else None
    with pytest.raises(pio.ValidationError) as info:
        project.create_exporter(connector, "out", path="x.csv", write_mode=mode, key=key)
    assert "safe, replace, timestamp" in info.value.message


@pytest.mark.parametrize("kind", WRITABLE)
@pytest.mark.parametrize("path", ["../escape.csv", "a/../../escape.csv", "%2e%2e/escape.csv", "a\\b.csv"])
def test_paths_leaving_the_root_are_refused(
    project: pio.Project, servers: FileServers, kind: str, path: str
) -> None:
    """'..' (even percent-encoded) and backslashes are refused at creation: unsafe_path."""
    connector = writer(project, kind, servers)
    with pytest.raises(pio.ValidationError) as info:
        project.create_exporter(connector, "out", path=path, **bucket(kind, servers))
    assert info.value.code == "unsafe_path"


@pytest.mark.parametrize("path", ["/etc/previsio.csv", "//elsewhere/x.csv", "/%2Fetc/x.csv"])
def test_absolute_paths_are_refused_below_a_local_root(
    project: pio.Project, servers: FileServers, path: str
) -> None:
    """A local connector's root is a boundary of the platform's machine: absolute paths are unsafe_path."""
    kind = "local"
    connector = writer(project, kind, servers)
    with pytest.raises(pio.ValidationError) as info:
        project.create_exporter(connector, "out", path=path, **bucket(kind, servers))
    assert info.value.code == "unsafe_path"


@pytest.mark.parametrize("path", ["out/*.csv", "out/", "", "out/report.xlsx"])
def test_patterns_directories_and_unknown_formats_are_refused(
    project: pio.Project, servers: FileServers, path: str
) -> None:
    """A destination is one file of a known format (csv, tsv, parquet): no glob, no directory, no .xlsx."""
    connector = writer(project, "local", servers)
    with pytest.raises(pio.ValidationError):
        project.create_exporter(connector, "out", path=path or None)


def test_the_format_can_be_given_when_the_name_does_not_tell_it(
    project: pio.Project, servers: FileServers, folder: str, tmp_path: Path
) -> None:
    """format="tsv" writes a tab-separated file under a name without extension."""
    connector = writer(project, "local", servers)
    exporter = project.create_exporter(connector, "out", path=f"{folder}/orders.data", format="tsv")
    assert exporter.options == {"format": "tsv"}
    exporter.export_dataset(upload(project, orders(1), tmp_path), progress=False, wait_for_export=True)
    assert files_in("local", servers, folder)["orders.data"] == b'"id"\t"customer"\n1\t"customer 1"\n'


def test_http_connectors_cannot_be_exported_to(project: pio.Project, servers: FileServers) -> None:
    """An HTTP connector only reads: creating an exporter on it is refused with unsupported_operation."""
    http = make_connector(project, "http", servers)
    with pytest.raises(pio.ValidationError) as info:
        project.create_exporter(http, "out", path="x.csv")
    assert info.value.code == "unsupported_operation"


# -- failures change nothing ---------------------------------------------------------------------------------
def corrupt_parquet(path: Path) -> Path:
    """A Parquet file whose second row group is damaged: its first 65,536 rows read, then reading fails."""
    n = 140_000
    table = pa.table({"id": pa.array(range(n), pa.int64()), "name": [f"row number {i}" for i in range(n)]})
    pq.write_table(table, path, row_group_size=70_000, compression="snappy", use_dictionary=False)
    data = bytearray(path.read_bytes())
    chunk = pq.ParquetFile(path).metadata.row_group(1).column(1)
    start = chunk.data_page_offset + chunk.total_compressed_size // 3
    for i in range(start, start + 2000):
        data[i] = (data[i] * 7 + 13) % 256
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind", WRITABLE)
@pytest.mark.parametrize("mode", ["safe", "replace"])
def test_a_failure_in_the_middle_of_the_rows_leaves_the_destination_as_it_was(
    project: pio.Project, servers: FileServers, kind: str, mode: str, folder: str, tmp_path: Path
) -> None:
    """A file that fails to read after a first batch was written: the export fails, the previous file
    (replace) is intact, and no temporary file, partial file or new directory is left behind."""
    connector = writer(project, kind, servers)
    path = f"{folder}/new/deeper/orders.csv" if mode == "safe" else f"{folder}/orders.csv"
    exporter = project.create_exporter(connector, "out", path=path, write_mode=mode, **bucket(kind, servers))
    if mode == "replace":
        exporter.export_dataset(upload(project, orders(2), tmp_path), progress=False, wait_for_export=True)
    before = files_in(kind, servers, folder)
    with pytest.raises(pio.JobFailedError) as info:
        exporter.export_file(
            corrupt_parquet(tmp_path / "broken.parquet"), progress=False, wait_for_export=True
        )
    assert info.value.code == "invalid_file", info.value.message
    assert files_in(kind, servers, folder) == before
    if kind != "s3":
        assert not (servers.files_root / folder / "new").exists()
    else:
        uploads = servers.s3.client().list_multipart_uploads(Bucket=servers.s3.bucket, Prefix=folder)
        assert uploads.get("Uploads", []) == []
    export = exporter.list_exports()[-1]
    assert (export.status, export.error_code, export.destination) == ("failed", "invalid_file", None)


def test_a_symbolic_link_out_of_a_local_root_is_not_followed(
    project: pio.Project, servers: FileServers, tmp_path: Path
) -> None:
    """A local destination below a link out of the root fails (unsafe_path); nothing is written there."""
    connector = writer(project, "local", servers)
    before = sorted(p.name for p in servers.outside.iterdir())
    exporter = project.create_exporter(connector, "out", path="escape-dir/stolen.csv")
    with pytest.raises(pio.JobFailedError) as info:
        exporter.export_dataset(upload(project, orders(1), tmp_path), progress=False, wait_for_export=True)
    assert info.value.code == "unsafe_path"
    assert sorted(p.name for p in servers.outside.iterdir()) == before


# -- round trips ---------------------------------------------------------------------------------------------
def typed_table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "qty": pa.array([10, None, -3], pa.int32()),
            "price": pa.array([1.25, 2.5, None], pa.float64()),
            "amount": pa.array([Decimal("12.34"), None, Decimal("-0.50")], pa.decimal128(12, 2)),
            "label": pa.array(["héllo", 'quote " and \\ back\nslash', None], pa.string()),
            "paid": pa.array([True, False, None], pa.bool_()),
            "day": pa.array([date(2024, 1, 31), None, date(1999, 12, 31)], pa.date32()),
            "at": pa.array(
                [datetime(2024, 1, 2, 3, 4, 5, 678900), None, datetime(1970, 1, 1)], pa.timestamp("us")
            ),
            "at_utc": pa.array(
                [
                    datetime(2024, 6, 1, 12, tzinfo=timezone.utc),
                    None,
                    datetime(2001, 1, 1, tzinfo=timezone.utc),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


@pytest.mark.parametrize("kind", WRITABLE)
def test_round_trip_through_parquet_keeps_rows_and_types(
    project: pio.Project, servers: FileServers, kind: str, folder: str, tmp_path: Path
) -> None:
    """snapshot -> export as Parquet -> snapshot of the file gives the same rows and the same Arrow types."""
    connector = writer(project, kind, servers)
    original = typed_table()
    exporter = project.create_exporter(
        connector, "out", path=f"{folder}/typed.parquet", **bucket(kind, servers)
    )
    export = exporter.export_dataset(
        upload(project, original, tmp_path), progress=False, wait_for_export=True
    )
    source = project.create_datasource(connector, "back", path=export.destination, **bucket(kind, servers))
    again = project.create_dataset("again", datasource=source, progress=False).to_arrow()
    assert again.schema.remove_metadata() == original.schema
    assert again.to_pylist() == original.to_pylist()


@pytest.mark.parametrize("kind", WRITABLE)
def test_round_trip_through_csv_keeps_rows(
    project: pio.Project, servers: FileServers, kind: str, folder: str, tmp_path: Path
) -> None:
    """snapshot -> export as CSV -> snapshot of the file: the same rows, types inferred from the text."""
    connector = writer(project, kind, servers)
    original = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "price": pa.array([1.25, None, -3.5]),
            "label": pa.array(["a, b", 'quote "q"', None]),
            "paid": pa.array([True, False, None]),
        }
    )
    exporter = project.create_exporter(connector, "out", path=f"{folder}/rows.csv", **bucket(kind, servers))
    export = exporter.export_dataset(
        upload(project, original, tmp_path), progress=False, wait_for_export=True
    )
    source = project.create_datasource(connector, "back", path=export.destination, **bucket(kind, servers))
    again = project.create_dataset("again", datasource=source, progress=False)
    assert [c.type for c in again.schema] == ["int64", "double", "string", "bool"]
    assert again.to_arrow().to_pylist() == original.to_pylist()
