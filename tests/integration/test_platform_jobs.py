"""Jobs: uploads and snapshots answer at once with a job; waiting on it gives the dataset."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

import previsio_sdk as pio


@pytest.fixture
def orders_source(project, sqlite_path):
    """A datasource on an SQLite table of 30 000 rows."""
    con = sqlite3.connect(sqlite_path)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, label TEXT)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?)", ((i, i * 0.5, f"o{i}") for i in range(30_000)))
    con.commit()
    con.close()
    connector = project.create_sql_connector("lite", driver="sqlite", database=str(sqlite_path))
    return project.create_datasource(connector, "orders", table="orders")


def test_an_upload_without_waiting_returns_a_job_that_waits_for_the_dataset(project):
    """create_dataset(dataframe=..., wait=False) returns a pio.Job; job.wait() returns the Dataset."""
    df = pd.DataFrame({"x": np.arange(20_000, dtype="int64")})
    job = project.create_dataset("later", dataframe=df, wait=False)
    assert isinstance(job, pio.Job)
    assert (job.kind, job.project_id) == ("upload", project.id)
    assert job.status in ("pending", "running", "succeeded")
    dataset = job.wait(timeout=60)
    assert isinstance(dataset, pio.Dataset)
    assert (dataset.name, dataset.num_rows, dataset.origin) == ("later", 20_000, "upload")
    done = job.refresh()
    assert done.done and done.status == "succeeded"
    assert done.dataset_id == dataset.id
    assert done.progress_rows == dataset.num_rows
    assert done.error_code is None and done.error_message is None
    assert done.created_at is not None and done.finished_at is not None
    assert done.finished_at >= done.created_at


def test_a_snapshot_without_waiting_returns_a_job_whose_progress_ends_at_num_rows(project, orders_source):
    """A snapshot job (wait=False) ends succeeded with progress_rows equal to the dataset's num_rows."""
    job = project.create_dataset("snap", datasource=orders_source, wait=False)
    assert isinstance(job, pio.Job) and job.kind == "snapshot"
    dataset = job.wait()
    assert dataset.num_rows == 30_000
    assert dataset.datasource_id == orders_source.id and dataset.origin == "snapshot"
    final = job.refresh()
    assert (final.status, final.progress_rows, final.dataset_id) == ("succeeded", 30_000, dataset.id)
    assert dataset.to_pandas()["id"].tolist() == list(range(30_000))


def test_a_dataset_is_not_listed_before_its_job_succeeds(project, orders_source):
    """While a snapshot job runs, the dataset is absent or complete: never listed with a partial row count."""
    job = project.create_dataset("partial", datasource=orders_source, wait=False)
    seen = set()
    while not job.refresh().done:
        for ds in project.list_datasets():
            seen.add(ds.num_rows)
    job.wait()
    assert seen <= {30_000}
    assert [d.num_rows for d in project.list_datasets()] == [30_000]


def test_a_failed_job_reports_its_code_and_waits_raise_job_failed(project, tmp_path):
    """A failing upload job ends failed with its error code and message; wait() raises JobFailedError."""
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet")
    job = project.create_dataset("bad", file_name=path, wait=False)
    with pytest.raises(pio.JobFailedError) as info:
        job.wait(timeout=60)
    assert info.value.job_id == job.id and info.value.code == "invalid_file"
    failed = job.refresh()
    assert (failed.status, failed.error_code, failed.dataset_id) == ("failed", "invalid_file", None)
    assert failed.error_message and failed.done


def test_jobs_of_two_concurrent_uploads_both_succeed(project):
    """Two uploads started without waiting run side by side and both produce their own dataset."""
    jobs = [
        project.create_dataset(f"c{i}", dataframe=pd.DataFrame({"i": [i] * 1000}), wait=False)
        for i in range(2)
    ]
    datasets = [j.wait(timeout=60) for j in jobs]
    assert [d.name for d in datasets] == ["c0", "c1"]
    assert [d.to_pandas()["i"].unique().tolist() for d in datasets] == [[0], [1]]


def test_a_job_is_not_shown_to_a_wrong_token(project, platform):
    """Job.refresh() through a client with a wrong token raises AuthenticationError, never showing the job."""
    job = project.create_dataset("mine", dataframe=pd.DataFrame({"a": [1]}), wait=False)
    job.wait()
    stranger = pio.Client(url=platform.url, token="pvo_stranger")
    with pytest.raises(pio.AuthenticationError):
        pio.Job(id=job.id, project_id=project.id, kind="upload", status="?", client=stranger).refresh()
