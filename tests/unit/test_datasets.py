"""Datasets and jobs: snapshots, uploads, listing, reading (head, pandas, Arrow) and downloading."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import previsio_sdk as pio
from previsio_sdk.datasets import arrow_to_pandas

from .payloads import (
    CREATED_AT,
    MockApi,
    assert_request,
    dataset_payload,
    datasource_payload,
    error_payload,
    job_payload,
    page_payload,
    path_of,
    project_payload,
    query_of,
)

ARROW_STREAM = "application/vnd.apache.arrow.stream"


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Job polling does not wait between polls in this module."""
    monkeypatch.setattr("previsio_sdk.client.time.sleep", lambda s: None)


@pytest.fixture
def project(client: pio.Client) -> pio.Project:
    return pio.Project.from_dict(project_payload(), client)


@pytest.fixture
def dataset(client: pio.Client) -> pio.Dataset:
    return pio.Dataset.from_dict(dataset_payload(), client)


def sample_table() -> pa.Table:
    """A table with NULLs in an integer and a boolean column."""
    return pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "qty": pa.array([10, None, 30], pa.int32()),
            "paid": pa.array([True, None, False], pa.bool_()),
            "amount": pa.array([1.5, None, 3.25], pa.float64()),
            "label": pa.array(["a", None, "c"], pa.string()),
        }
    )


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def arrow_stream_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


class TestCreateFromDataSource:
    def test_snapshots_then_waits_then_fetches_the_dataset(self, project: pio.Project, api: MockApi) -> None:
        """create_dataset(datasource=) posts the snapshot, polls its job, then fetches the dataset."""
        api.add("POST", "/projects/p1/datasets", status=202, json=job_payload())
        api.add("GET", "/jobs/j1", json=job_payload(status="running", progress_rows=2))
        api.add("GET", "/jobs/j1", json=job_payload(status="succeeded", progress_rows=3))
        api.add("GET", "/datasets/d1", json=dataset_payload())

        src = pio.DataSource.from_dict(datasource_payload(), project.client)
        ds = project.create_dataset("orders_2024_01", datasource=src, progress=False)

        assert_request(
            api.requests[0],
            "POST",
            "/projects/p1/datasets",
            body={"name": "orders_2024_01", "datasource_id": "s1"},
        )
        assert_request(api.requests[1], "GET", "/jobs/j1")
        assert_request(api.requests[2], "GET", "/jobs/j1")
        assert_request(api.requests[3], "GET", "/datasets/d1")
        assert isinstance(ds, pio.Dataset)
        assert (ds.id, ds.name, ds.num_rows, ds.datasource_id) == ("d1", "orders_2024_01", 3, "s1")
        assert ds.schema == [pio.Column("id", "int64", False), pio.Column("amount", "double", True)]
        assert ds.columns == ["id", "amount"]

    def test_wait_false_returns_the_job_at_once(self, project: pio.Project, api: MockApi) -> None:
        """With wait=False the snapshot's Job is returned after the POST alone (a datasource id works)."""
        api.add("POST", "/projects/p1/datasets", status=202, json=job_payload())

        job = project.create_dataset("orders_2024_01", datasource="s1", wait=False)
        assert isinstance(job, pio.Job)
        assert (job.id, job.kind, job.status, job.done) == ("j1", "snapshot", "pending", False)
        assert len(api.requests) == 1

    def test_a_failed_snapshot_raises_job_failed(self, project: pio.Project, api: MockApi) -> None:
        """A snapshot whose job fails raises JobFailedError with the job's code and message."""
        api.add("POST", "/projects/p1/datasets", status=202, json=job_payload())
        api.add(
            "GET",
            "/jobs/j1",
            json=job_payload(
                status="failed",
                dataset_id=None,
                error_code="connection_failed",
                error_message="Cannot connect to db.example.com:5432.",
            ),
        )

        with pytest.raises(pio.JobFailedError) as info:
            project.create_dataset("orders", datasource="s1", progress=False)
        assert (info.value.code, info.value.message) == (
            "connection_failed",
            "Cannot connect to db.example.com:5432.",
        )
        assert info.value.job_id == "j1"
        assert len(api.requests) == 2

    def test_a_slow_snapshot_raises_job_timeout(self, project: pio.Project, api: MockApi) -> None:
        """A snapshot still running when the timeout passes raises JobTimeoutError."""
        api.add("POST", "/projects/p1/datasets", status=202, json=job_payload())
        api.add("GET", "/jobs/j1", json=job_payload(status="running"))

        with pytest.raises(pio.JobTimeoutError):
            project.create_dataset("orders", datasource="s1", timeout=0.0, progress=False)

    def test_a_taken_name_raises_conflict(self, project: pio.Project, api: MockApi) -> None:
        """A dataset name already used raises ConflictError from the POST, before any polling."""
        api.add(
            "POST",
            "/projects/p1/datasets",
            status=409,
            json=error_payload("conflict", "A dataset named 'orders' already exists in this project."),
        )

        with pytest.raises(pio.ConflictError):
            project.create_dataset("orders", datasource="s1")
        assert len(api.requests) == 1


class TestUpload:
    @pytest.mark.parametrize(
        ("file_name", "fmt"),
        [
            ("orders.csv", "csv"),
            ("orders.parquet", "parquet"),
            ("orders.PQ", "parquet"),
            ("Orders.CSV", "csv"),
        ],
    )
    def test_uploads_a_file_as_raw_bytes(
        self, project: pio.Project, api: MockApi, tmp_path: Path, file_name: str, fmt: str
    ) -> None:
        """create_dataset(file_name=) posts the file's bytes with name, format and file_name params."""
        content = b"id,amount\n1,1.5\n2,2.5\n"
        path = tmp_path / file_name
        path.write_bytes(content)
        api.add("POST", "/projects/p1/datasets/upload", status=202, json=job_payload(kind="upload"))
        api.add("GET", "/jobs/j1", json=job_payload(kind="upload", status="succeeded", progress_rows=2))
        api.add(
            "GET",
            "/datasets/d1",
            json=dataset_payload(origin="upload", datasource_id=None, file_name=file_name),
        )

        ds = project.create_dataset("local", file_name=path, progress=False)

        sent = api.requests[0]
        assert sent.method == "POST"
        assert path_of(sent) == "/projects/p1/datasets/upload"
        assert query_of(sent) == {"name": "local", "format": fmt, "file_name": file_name}
        assert sent.body == content
        assert sent.headers["Content-Type"] == "application/octet-stream"
        assert sent.headers["Authorization"] == "Bearer tok-123"
        assert (ds.origin, ds.file_name, ds.datasource_id) == ("upload", file_name, None)

    def test_uploads_a_dataframe_as_parquet(self, project: pio.Project, api: MockApi) -> None:
        """create_dataset(dataframe=) uploads Parquet bytes holding the frame's data without its index."""
        df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]}, index=[10, 20, 30])
        api.add("POST", "/projects/p1/datasets/upload", status=202, json=job_payload(kind="upload"))

        job = project.create_dataset("frame", dataframe=df, wait=False)

        sent = api.requests[0]
        assert query_of(sent) == {"name": "frame", "format": "parquet", "file_name": "dataframe.parquet"}
        assert sent.body[:4] == b"PAR1"
        uploaded = pq.read_table(io.BytesIO(sent.body))
        assert uploaded.column_names == ["id", "name"]
        assert uploaded.to_pydict() == {"id": [1, 2, 3], "name": ["a", "b", "c"]}
        assert isinstance(job, pio.Job) and job.kind == "upload"

    def test_an_upload_answered_503_is_retried_with_one_idempotency_key(
        self, project: pio.Project, api: MockApi, tmp_path: Path, backoffs: list[int]
    ) -> None:
        """An upload answered 503 is sent again (same Idempotency-Key) until max_retries, then raises."""
        path = tmp_path / "x.csv"
        path.write_bytes(b"a\n1\n")
        api.add("POST", "/projects/p1/datasets/upload", status=503)

        with pytest.raises(pio.ServerError):
            project.create_dataset("x", file_name=path)
        assert len(api.requests) == 1 + project.client.max_retries and backoffs == [1, 2, 3]
        assert len({r.headers["Idempotency-Key"] for r in api.requests}) == 1

    @pytest.mark.parametrize("name", ["data.xlsx", "data.json", "data", "data.csv.gz"])
    def test_an_unknown_extension_is_refused_before_any_request(
        self, project: pio.Project, api: MockApi, tmp_path: Path, name: str
    ) -> None:
        """A file whose extension is not .csv, .parquet or .pq raises ConfigurationError and sends nothing."""
        path = tmp_path / name
        path.write_bytes(b"x")

        with pytest.raises(pio.ConfigurationError, match=r"\.csv, \.parquet or \.zip"):
            project.create_dataset("x", file_name=path)
        assert api.requests == []


class TestSourceChoice:
    @pytest.mark.parametrize(
        "sources",
        [
            {},
            {"datasource": "s1", "file_name": "a.csv"},
            {"datasource": "s1", "dataframe": pd.DataFrame()},
            {"file_name": "a.csv", "dataframe": pd.DataFrame()},
            {"datasource": "s1", "file_name": "a.csv", "dataframe": pd.DataFrame()},
        ],
        ids=["none", "datasource+file", "datasource+frame", "file+frame", "all"],
    )
    def test_exactly_one_source_is_required(self, project: pio.Project, api: MockApi, sources: dict) -> None:
        """create_dataset with zero or several of datasource/file_name/dataframe raises ConfigurationError."""
        with pytest.raises(pio.ConfigurationError, match="exactly one"):
            project.create_dataset("x", **sources)
        assert api.requests == []

    def test_an_empty_dataframe_is_a_source(self, project: pio.Project, api: MockApi) -> None:
        """An empty DataFrame still counts as the one source given (it is uploaded, not refused)."""
        api.add("POST", "/projects/p1/datasets/upload", status=202, json=job_payload(kind="upload"))

        project.create_dataset(
            "empty", dataframe=pd.DataFrame({"a": pd.Series([], dtype="int64")}), wait=False
        )
        assert len(api.requests) == 1


class TestListAndRetrieve:
    def test_is_listable_across_pages(self, project: pio.Project, api: MockApi) -> None:
        """list_datasets follows the pages and returns Dataset objects."""
        api.add("GET", "/projects/p1/datasets", json=page_payload([dataset_payload(id="d1")], total=3))
        api.add(
            "GET", "/projects/p1/datasets", json=page_payload([dataset_payload(id="d2")], total=3, page=2)
        )
        api.add(
            "GET", "/projects/p1/datasets", json=page_payload([dataset_payload(id="d3")], total=3, page=3)
        )

        datasets = project.list_datasets()
        assert [d.id for d in datasets] == ["d1", "d2", "d3"]
        assert all(isinstance(d, pio.Dataset) for d in datasets)
        for number, sent in enumerate(api.requests, start=1):
            assert_request(
                sent, "GET", "/projects/p1/datasets", query={"page": str(number), "page_size": "500"}
            )

    def test_is_retrievable(self, client: pio.Client, api: MockApi) -> None:
        """Dataset.from_id fetches /datasets/{id} and reads its metadata."""
        api.add("GET", "/datasets/d1", json=dataset_payload())

        ds = pio.Dataset.from_id("d1", client=client)
        assert_request(api.requests[0], "GET", "/datasets/d1")
        assert (ds.size_bytes, ds.content_hash, ds.origin) == (1234, "ab" * 32, "snapshot")

    def test_fetches_its_datasource(self, dataset: pio.Dataset, api: MockApi) -> None:
        """dataset.datasource fetches the datasource it was taken from; an upload has none."""
        api.add("GET", "/datasources/s1", json=datasource_payload())

        assert dataset.datasource.id == "s1"
        upload = pio.Dataset.from_dict(dataset_payload(datasource_id=None, origin="upload"), dataset.client)
        assert upload.datasource is None
        assert len(api.requests) == 1

    def test_is_deletable(self, dataset: pio.Dataset, api: MockApi) -> None:
        """dataset.delete() sends DELETE /datasets/{id}."""
        api.add("DELETE", "/datasets/d1", status=204)

        dataset.delete()
        assert_request(api.requests[0], "DELETE", "/datasets/d1")


class TestRead:
    def test_head_decodes_an_arrow_stream(self, dataset: pio.Dataset, api: MockApi) -> None:
        """head(n) asks for n rows as an Arrow IPC stream and returns a DataFrame with nullable dtypes."""
        table = sample_table().slice(0, 2)
        api.add("GET", "/datasets/d1/head", body=arrow_stream_bytes(table), content_type=ARROW_STREAM)

        df = dataset.head(2)
        assert_request(api.requests[0], "GET", "/datasets/d1/head", query={"n": "2"})
        assert api.requests[0].headers["Accept"] == ARROW_STREAM
        assert list(df.columns) == ["id", "qty", "paid", "amount", "label"]
        assert len(df) == 2
        assert str(df["qty"].dtype) == "Int32"
        assert df["qty"].isna().tolist() == [False, True]

    def test_head_of_an_empty_dataset_keeps_the_columns(self, dataset: pio.Dataset, api: MockApi) -> None:
        """head() of a dataset with no rows is an empty DataFrame with the dataset's columns."""
        api.add(
            "GET",
            "/datasets/d1/head",
            body=arrow_stream_bytes(sample_table().slice(0, 0)),
            content_type=ARROW_STREAM,
        )

        df = dataset.head()
        assert query_of(api.requests[0]) == {"n": "10"}
        assert df.empty and list(df.columns) == ["id", "qty", "paid", "amount", "label"]

    def test_to_pandas_keeps_integers_and_booleans_with_nulls(
        self, dataset: pio.Dataset, api: MockApi
    ) -> None:
        """to_pandas keeps integer and boolean columns with NULLs as Int32/boolean; without NULLs, int64."""
        api.add("GET", "/datasets/d1/download", body=parquet_bytes(sample_table()))

        df = dataset.to_pandas()
        assert_request(api.requests[0], "GET", "/datasets/d1/download")
        assert {c: str(df[c].dtype) for c in ("id", "qty", "paid", "amount")} == {
            "id": "int64",
            "qty": "Int32",
            "paid": "boolean",
            "amount": "float64",
        }
        assert df["qty"].tolist()[0] == 10 and df["qty"][1] is pd.NA
        assert df["paid"][1] is pd.NA and df["paid"][0]
        assert list(df.columns) == ["id", "qty", "paid", "amount", "label"]

    def test_to_arrow_reads_the_downloaded_parquet(self, dataset: pio.Dataset, api: MockApi) -> None:
        """to_arrow returns the Parquet file's table unchanged (types and NULLs)."""
        table = sample_table()
        api.add("GET", "/datasets/d1/download", body=parquet_bytes(table))

        assert dataset.to_arrow().equals(table)

    def test_read_of_a_missing_dataset_raises_not_found(self, dataset: pio.Dataset, api: MockApi) -> None:
        """Reading a dataset deleted meanwhile raises NotFoundError."""
        api.add("GET", "/datasets/d1/download", status=404, json=error_payload("not_found", "No dataset."))

        with pytest.raises(pio.NotFoundError):
            dataset.to_arrow()


class TestArrowToPandas:
    @pytest.mark.parametrize(
        ("arrow_type", "dtype"),
        [
            (pa.int8(), "Int8"),
            (pa.int16(), "Int16"),
            (pa.int32(), "Int32"),
            (pa.int64(), "Int64"),
            (pa.uint8(), "UInt8"),
            (pa.uint16(), "UInt16"),
            (pa.uint32(), "UInt32"),
            (pa.uint64(), "UInt64"),
            (pa.bool_(), "boolean"),
        ],
    )
    def test_maps_to_nullable_dtypes(self, arrow_type: pa.DataType, dtype: str) -> None:
        """Every integer and the boolean Arrow type become the matching pandas nullable dtype."""
        values = [True, None] if arrow_type == pa.bool_() else [1, None]
        df = arrow_to_pandas(pa.table({"c": pa.array(values, arrow_type)}))
        assert str(df["c"].dtype) == dtype
        assert df["c"][1] is pd.NA


class TestDownload:
    def test_writes_the_file_to_a_path(self, dataset: pio.Dataset, api: MockApi, tmp_path: Path) -> None:
        """download(path) writes the Parquet bytes to path and returns it."""
        data = parquet_bytes(sample_table())
        api.add("GET", "/datasets/d1/download", body=data)

        target = tmp_path / "copy.parquet"
        assert dataset.download(target) == str(target)
        assert target.read_bytes() == data
        assert_request(api.requests[0], "GET", "/datasets/d1/download")

    def test_names_the_file_after_the_dataset_in_a_directory(
        self, dataset: pio.Dataset, api: MockApi, tmp_path: Path
    ) -> None:
        """download(directory) writes <directory>/<name>.parquet."""
        api.add("GET", "/datasets/d1/download", body=b"PAR1data")

        written = dataset.download(tmp_path)
        assert written == str(tmp_path / "orders_2024_01.parquet")
        assert (tmp_path / "orders_2024_01.parquet").read_bytes() == b"PAR1data"

    @pytest.mark.parametrize("name", ["sales/2024", "../escape", "a\\b"])
    def test_a_name_with_separators_stays_inside_the_directory(
        self, client: pio.Client, api: MockApi, tmp_path: Path, name: str
    ) -> None:
        """A dataset name holding path separators never writes outside the directory given."""
        api.add("GET", "/datasets/d1/download", body=b"PAR1data")
        target = tmp_path / "out"
        target.mkdir()

        written = Path(pio.Dataset.from_dict(dataset_payload(name=name), client).download(target))
        assert written.parent == target
        assert written.suffix == ".parquet"
        assert written.read_bytes() == b"PAR1data"
        assert [p.name for p in tmp_path.iterdir()] == ["out"]


class TestJob:
    def test_refresh_fetches_the_current_state(self, client: pio.Client, api: MockApi) -> None:
        """job.refresh() GETs /jobs/{id} and returns a new Job with the current state."""
        api.add(
            "GET", "/jobs/j1", json=job_payload(status="succeeded", progress_rows=3, finished_at=CREATED_AT)
        )

        job = pio.Job.from_dict(job_payload(), client)
        fresh = job.refresh()
        assert_request(api.requests[0], "GET", "/jobs/j1")
        assert (job.status, fresh.status, fresh.done, fresh.progress_rows) == (
            "pending",
            "succeeded",
            True,
            3,
        )

    def test_wait_returns_the_dataset(self, client: pio.Client, api: MockApi) -> None:
        """job.wait() polls the job and returns the dataset it made."""
        api.add("GET", "/jobs/j1", json=job_payload(status="succeeded"))
        api.add("GET", "/datasets/d1", json=dataset_payload())

        ds = pio.Job.from_dict(job_payload(), client).wait(progress=False)
        assert isinstance(ds, pio.Dataset) and ds.id == "d1"

    @pytest.mark.parametrize(
        ("status", "done"), [("pending", False), ("running", False), ("succeeded", True), ("failed", True)]
    )
    def test_done_tells_whether_the_job_ended(self, client: pio.Client, status: str, done: bool) -> None:
        """done is True for succeeded and failed jobs only."""
        assert pio.Job.from_dict(job_payload(status=status), client).done is done


def test_repr_is_readable_and_hides_the_client(dataset: pio.Dataset) -> None:
    """repr of a dataset is one line (name, rows × columns, size, time) and does not show its client."""
    text = repr(dataset)
    assert text == "<Dataset 'orders_2024_01' 3 rows × 2 columns, 1.2 kB, 2024-05-01 12:00 UTC>"
    assert "client" not in text.lower()
