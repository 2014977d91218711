"""Dataset stores: the local directory and an S3-compatible object store (moto's server), behind one
interface.

The store tests run the same checks on both stores; the platform tests start a platform whose datasets live in
the S3 store (``PREVISIO_STORE_URL=s3://...``) and check that snapshots, uploads, downloads, ``head`` and
exports go through it, with no file of a dataset on the platform's disk and no staging object left behind.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import start_platform, stop_platform
from fileservers import S3ServerInfo, start_s3, stop_process

import previsio_sdk as pio
from previsio_sdk.server.stores import DatasetStore, LocalDatasetStore
from previsio_sdk.server.stores.s3 import S3DatasetStore, parse_store_url

ROWS = 300_000


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3ServerInfo]:
    """moto's S3 server, for this module alone."""
    info = start_s3(tmp_path_factory.mktemp("moto"))
    yield info
    stop_process(info.process)


def _s3_store(s3: S3ServerInfo, prefix: str | None = None) -> S3DatasetStore:
    return S3DatasetStore(
        s3.bucket,
        prefix or f"store-{uuid.uuid4().hex[:8]}",
        endpoint_url=s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> DatasetStore:
    """Each store in turn: a local directory, a prefix of the moto bucket."""
    if request.param == "local":
        return LocalDatasetStore(tmp_path / "datasets", tmp_path / "tmp")
    return _s3_store(request.getfixturevalue("s3_server"))


def _table(rows: int = ROWS) -> pa.Table:
    return pa.table(
        {"id": pa.array(range(rows), pa.int64()), "label": [f"row {i % 97}" for i in range(rows)]}
    )


def _leftovers(store: DatasetStore) -> list[str]:
    if isinstance(store, LocalDatasetStore):
        return sorted(p.name for p in store.tmp.iterdir())
    return sorted(store._names("staging") + store._names("uploads"))


def test_a_dataset_is_written_staged_then_published(store: DatasetStore) -> None:
    """A written file is invisible until committed; after the commit it reads back whole, its hash is the hash
    of the stored bytes, and no staging object is left."""
    table = _table()
    written = store.write(pa.RecordBatchReader.from_batches(table.schema, table.to_batches(50_000)), "job1")
    assert written.num_rows == ROWS
    with pytest.raises(FileNotFoundError):
        with store.open("ds1"):
            pass
    store.commit(written, "ds1")
    with store.reader("ds1", 65536) as reader:
        assert reader.read_all().equals(table)
    data = b"".join(store.stream("ds1"))
    assert len(data) == written.size_bytes
    assert hashlib.sha256(data).hexdigest() == written.content_hash
    assert _leftovers(store) == []
    store.delete("ds1")
    with pytest.raises(FileNotFoundError):
        with store.open("ds1"):
            pass


def test_a_failed_write_leaves_nothing(store: DatasetStore) -> None:
    """A stream that fails half way leaves no object, no staging and no pending multipart upload."""
    table = _table()

    def batches() -> Iterator[pa.RecordBatch]:
        yield from table.to_batches(50_000)[:3]
        raise RuntimeError("the source went away")

    with pytest.raises(RuntimeError):
        store.write(pa.RecordBatchReader.from_batches(table.schema, batches()), "job2")
    assert _leftovers(store) == []
    store.discard("job2")  # nothing to discard is fine
    if isinstance(store, S3DatasetStore):
        bucket, _, key = store.staging_key("job2").partition("/")
        assert store.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key).get("Uploads", []) == []


def test_uploads_are_staged_in_the_store(store: DatasetStore) -> None:
    """An upload written in chunks reads back whole (seekable, for Parquet), and removing it leaves
    nothing."""
    buf = io.BytesIO()
    pq.write_table(_table(10_000), buf)
    sink = store.new_upload("parquet")
    payload = buf.getvalue()
    for start in range(0, len(payload), 100_000):
        sink.write(payload[start : start + 100_000])
    sink.finish()
    with store.open_upload(sink.ref) as fh:
        assert pq.ParquetFile(fh).metadata.num_rows == 10_000
    store.remove_upload(sink.ref)
    assert _leftovers(store) == []
    aborted = store.new_upload("csv")
    aborted.write(b"a,b\n1,2\n")
    aborted.abort()
    assert _leftovers(store) == []
    with pytest.raises(ValueError):
        with store.open_upload("../platform.db"):
            pass


def test_clean_keeps_what_others_hold(store: DatasetStore) -> None:
    """Start-up cleaning removes orphans only: datasets no row refers to and staging of jobs nobody holds."""
    table = _table(1000)
    for job in ("kept", "orphan"):
        store.write(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), job)
    done = store.write(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), "done")
    store.commit(done, "dsA")
    other = store.write(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), "done2")
    store.commit(other, "dsB")
    store.clean(keep_datasets={"dsA"}, keep_staging={"kept"})
    assert [name for name in _leftovers(store) if "kept" in name] and len(_leftovers(store)) == 1
    with store.open("dsA"):
        pass
    with pytest.raises(FileNotFoundError):
        with store.open("dsB"):
            pass


def test_head_reads_only_what_it_needs_from_the_object_store(s3_server: S3ServerInfo) -> None:
    """``head()`` on an S3 dataset fetches the footer and the first row group with ranged reads: a small part
    of the object."""
    store = _s3_store(s3_server)
    table = _table(1_000_000)
    written = store.write(pa.RecordBatchReader.from_batches(table.schema, table.to_batches(100_000)), "big")
    store.commit(written, "big")
    import s3fs.core

    fetched: list[int] = []
    original = s3fs.core.S3File._fetch_range

    def counting_fetch(self: object, start: int, end: int) -> bytes:
        data = original(self, start, end)
        fetched.append(len(data))
        return data

    s3fs.core.S3File._fetch_range = counting_fetch  # type: ignore[method-assign]
    try:
        head = store.head("big", 5)
    finally:
        s3fs.core.S3File._fetch_range = original  # type: ignore[method-assign]
    assert head.num_rows == 5 and head.column("id").to_pylist() == [0, 1, 2, 3, 4]
    assert 0 < sum(fetched) < written.size_bytes / 2, (sum(fetched), written.size_bytes)


def test_the_store_url_is_parsed_without_credentials() -> None:
    """``s3://bucket/prefix`` names a bucket and a prefix; a URL with credentials is refused without echoing
    them."""
    assert parse_store_url("s3://lake/previsio/prod/") == ("lake", "previsio/prod")
    assert parse_store_url("s3://lake") == ("lake", "")
    with pytest.raises(ValueError) as caught:
        parse_store_url("s3://AKIA:hunter22secret@lake/x")
    assert "hunter22secret" not in str(caught.value)
    with pytest.raises(ValueError):
        parse_store_url("https://lake/x")


def test_a_platform_keeps_its_datasets_in_the_object_store(s3_server: S3ServerInfo, tmp_path: Path) -> None:
    """A platform with ``PREVISIO_STORE_URL=s3://...`` snapshots, uploads, downloads, reads heads and exports
    through the object store: no dataset file on its disk, the downloaded bytes hash to the dataset's content
    hash, no staging object or upload left once the jobs are done, and deleting a dataset removes its
    object."""
    prefix = f"platform-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "home"
    running = start_platform(
        home,
        env={
            "PREVISIO_STORE_URL": f"s3://{s3_server.bucket}/{prefix}",
            "PREVISIO_STORE_ENDPOINT_URL": s3_server.endpoint,
            "PREVISIO_STORE_ACCESS_KEY": s3_server.access_key,
            "PREVISIO_STORE_SECRET_KEY": s3_server.secret_key,
        },
    )
    store = _s3_store(s3_server, prefix)
    try:
        client = running.client()
        project = pio.Project.new("on-s3", client=client)
        source_db = tmp_path / "source.db"
        import sqlite3

        con = sqlite3.connect(source_db)
        con.execute("CREATE TABLE t (id INTEGER, name TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"n{i}") for i in range(5000)])
        con.commit()
        con.close()
        lite = project.create_sql_connector("lite", driver="sqlite", database=str(source_db))
        src = project.create_datasource(lite, "t", table="t")
        snap = project.create_dataset("t_v1", datasource=src)
        assert snap.num_rows == 5000
        assert snap.head(3).to_dict("list") == {"id": [0, 1, 2], "name": ["n0", "n1", "n2"]}
        target = tmp_path / "t.parquet"
        snap.download(str(target))
        assert hashlib.sha256(target.read_bytes()).hexdigest() == snap.content_hash
        df = pd.DataFrame({"x": range(1000), "y": [f"v{i}" for i in range(1000)]})
        up = project.create_dataset("uploaded", dataframe=df)
        assert up.to_pandas()["x"].sum() == df["x"].sum()
        exporter = project.create_exporter(lite, "back", table="t_copy", write_mode="replace")
        assert exporter.export_dataset(snap, wait_for_export=True).rows == 5000
        assert sorted(store._names("datasets")) == sorted([f"{snap.id}.parquet", f"{up.id}.parquet"])
        assert list((home / "datasets").glob("*.parquet")) == []
        assert _leftovers(store) == []
        up.delete()
        assert store._names("datasets") == [f"{snap.id}.parquet"]
    finally:
        stop_platform(running)
