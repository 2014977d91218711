"""Uploads: DataFrames, CSV and Parquet files become datasets that read back equal; bad ones leave none."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import previsio_sdk as pio


def sample_frame() -> pd.DataFrame:
    """Every basic column kind, each with a NULL in the middle row."""
    return pd.DataFrame(
        {
            "i": pd.array([1, None, -(2**53)], dtype="Int64"),
            "f": [1.5, np.nan, -2.25e300],
            "s": ["a", None, "ç😀"],
            "b": pd.array([True, None, False], dtype="boolean"),
            "t": pd.to_datetime(
                ["2024-01-02 03:04:05", None, "1999-12-31 23:59:59.123456"], format="ISO8601"
            ),
            "tz": pd.to_datetime(["2024-01-02T03:04:05Z", None, "1970-01-01T00:00:00Z"], format="ISO8601"),
        }
    )


def test_a_dataframe_round_trips_with_values_dtypes_and_nulls(project):
    """create_dataset(dataframe=df) then to_pandas() gives back df: same values, NULLs and dtypes."""
    df = sample_frame()
    ds = project.create_dataset("frame", dataframe=df)
    assert isinstance(ds, pio.Dataset)
    assert (ds.num_rows, ds.origin, ds.datasource_id) == (3, "upload", None)
    assert ds.columns == list(df.columns)
    types = {c.name: c.type for c in ds.schema}
    assert types["i"] == "int64" and types["f"] == "double" and types["b"] == "bool"
    assert types["s"] in ("string", "large_string")
    assert types["t"].startswith("timestamp[") and "tz=" not in types["t"]
    assert types["tz"].startswith("timestamp[") and "tz=UTC" in types["tz"]
    assert len(ds.content_hash) == 64 and ds.size_bytes > 0

    back = ds.to_pandas()
    assert dict(back.dtypes) == dict(df.dtypes)
    pd.testing.assert_frame_equal(back, df)
    assert back.isna().sum().tolist() == [1] * 6


def test_a_dataframe_with_an_index_and_many_rows_keeps_only_columns(project):
    """A 100 000-row DataFrame with a named index uploads its columns only, every row in order."""
    n = 100_000
    df = pd.DataFrame(
        {"k": np.arange(n, dtype="int64"), "v": np.arange(n) * 0.5},
        index=pd.Index(np.arange(n) + 7, name="idx"),
    )
    ds = project.create_dataset("big", dataframe=df)
    assert ds.num_rows == n and ds.columns == ["k", "v"]
    back = ds.to_pandas()
    assert back["k"].tolist() == list(range(n))
    assert float(back["v"].sum()) == float(df["v"].sum())


def test_a_csv_file_upload_infers_column_types(project, tmp_path):
    """A CSV upload infers int64, double, string, timestamp and bool columns; empty cells are NULLs."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "id,price,label,ordered_at,paid\n"
        "1,2.5,first,2024-01-02 03:04:05,true\n"
        "2,,second,2024-02-03 00:00:00,false\n"
        "3,4,third,,\n"
    )
    ds = project.create_dataset("orders", file_name=path)
    assert ds.num_rows == 3 and ds.file_name == "orders.csv"
    assert [(c.name, c.type) for c in ds.schema] == [
        ("id", "int64"),
        ("price", "double"),
        ("label", "string"),
        ("ordered_at", "timestamp[s]"),
        ("paid", "bool"),
    ]
    df = ds.to_pandas()
    assert df["id"].tolist() == [1, 2, 3]
    assert df["price"].isna().tolist() == [False, True, False]
    assert df["ordered_at"][0] == pd.Timestamp("2024-01-02 03:04:05")
    assert pd.isna(df["ordered_at"][2]) and pd.isna(df["paid"][2])
    assert df["label"].tolist() == ["first", "second", "third"]


def test_a_csv_file_name_given_as_str_with_upper_case_extension(project, tmp_path):
    """file_name may be a str and its extension any case (DATA.CSV is a CSV)."""
    path = tmp_path / "DATA.CSV"
    path.write_text("a;b\n1;2\n".replace(";", ","))
    ds = project.create_dataset("upper", file_name=str(path))
    assert ds.num_rows == 1 and ds.columns == ["a", "b"]


def test_a_parquet_file_upload_keeps_its_arrow_types(project, tmp_path):
    """A Parquet upload keeps decimal, date, binary and list types and reads back equal to the file."""
    table = pa.table(
        {
            "amount": pa.array([Decimal("12.34"), None, Decimal("-0.01")], pa.decimal128(10, 2)),
            "day": pa.array([datetime(2024, 1, 1).date(), None, datetime(1900, 2, 28).date()], pa.date32()),
            "raw": pa.array([b"\x00\xff", None, b""], pa.binary()),
            "tags": pa.array([["a", "b"], None, []], pa.list_(pa.string())),
            "at": pa.array(
                [datetime(2024, 1, 1, tzinfo=timezone.utc), None, None], pa.timestamp("us", tz="UTC")
            ),
        }
    )
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path)
    ds = project.create_dataset("typed", file_name=path)
    assert ds.num_rows == 3 and ds.file_name == "typed.parquet"
    assert ds.to_arrow().equals(table)


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"this is not a parquet file at all" * 10, "garbage.parquet"),
        (b"PAR1" + os.urandom(512) + b"PAR1", "fake-magic.parquet"),
        (None, "truncated.parquet"),
        (b"a,b\n1,2\n3,4,5\n", "ragged.csv"),
    ],
    ids=["garbage", "magic-bytes-around-garbage", "truncated", "ragged-csv"],
)
def test_an_unreadable_file_fails_its_job_and_leaves_no_dataset(project, platform, tmp_path, content, name):
    """An unreadable upload raises JobFailedError(code invalid_file) and leaves no dataset or file."""
    path = tmp_path / name
    if content is None:
        whole = tmp_path / "whole.parquet"
        pq.write_table(pa.table({"x": list(range(1000))}), whole)
        content = whole.read_bytes()[:-20]
    path.write_bytes(content)
    files_before = set((platform.home / "datasets").iterdir())
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("broken", file_name=path)
    err = info.value
    assert err.code == "invalid_file"
    assert ("parquet" if name.endswith("parquet") else "csv") in err.message
    assert err.job_id
    job = pio.Job(id=err.job_id, project_id=project.id, kind="upload", status="?", client=project.client)
    job = job.refresh()
    assert (job.status, job.error_code, job.dataset_id) == ("failed", "invalid_file", None)
    assert project.list_datasets() == []
    assert set((platform.home / "datasets").iterdir()) == files_before
    # the name is free again: nothing half-made holds it
    ok = project.create_dataset("broken", dataframe=pd.DataFrame({"x": [1]}))
    assert ok.num_rows == 1


@pytest.mark.parametrize("name", ["data.xlsx", "data.json", "data", "data.csv.gz"])
def test_an_unknown_extension_is_refused_before_any_request(project, tmp_path, name):
    """create_dataset(file_name=...) with an extension but .csv/.parquet/.pq raises ConfigurationError."""
    path = tmp_path / name
    path.write_bytes(b"a,b\n1,2\n")
    with pytest.raises(pio.ConfigurationError, match="format"):
        project.create_dataset("x", file_name=path)
    assert project.list_datasets() == []


def test_exactly_one_source_must_be_given(project, tmp_path):
    """create_dataset with no source, or with two, raises ConfigurationError."""
    with pytest.raises(pio.ConfigurationError):
        project.create_dataset("none")
    path = tmp_path / "a.csv"
    path.write_text("a\n1\n")
    with pytest.raises(pio.ConfigurationError):
        project.create_dataset("two", file_name=path, dataframe=pd.DataFrame({"a": [1]}))


def test_an_empty_file_is_refused_with_validation_error(project, tmp_path):
    """Uploading an empty file raises ValidationError (422) and creates no dataset."""
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(pio.ValidationError, match="empty"):
        project.create_dataset("empty", file_name=path)
    assert project.list_datasets() == []


def test_a_duplicate_dataset_name_is_a_conflict(project):
    """A second upload under a dataset name already used raises ConflictError naming the first."""
    first = project.create_dataset("dup", dataframe=pd.DataFrame({"a": [1]}))
    with pytest.raises(pio.ConflictError) as info:
        project.create_dataset("dup", dataframe=pd.DataFrame({"a": [2]}))
    assert first.id in info.value.message
    assert [d.id for d in project.list_datasets()] == [first.id]


@pytest.mark.parametrize("n", [0, 1, 5, 10, 250, 1000])
def test_head_returns_the_first_n_rows(project, n):
    """head(n) returns the first n rows (all of them when n exceeds the count), in order, with the columns."""
    df = pd.DataFrame({"k": np.arange(300, dtype="int64"), "s": [f"r{i}" for i in range(300)]})
    ds = project.create_dataset("h", dataframe=df)
    head = ds.head(n)
    assert list(head.columns) == ["k", "s"]
    assert head["k"].tolist() == list(range(min(n, 300)))
    assert head["s"].tolist() == [f"r{i}" for i in range(min(n, 300))]


def test_download_to_a_path_writes_the_dataset_parquet(project, tmp_path):
    """download(path) writes a Parquet file pyarrow reads equal to to_arrow(), with the platform's hash."""
    import hashlib

    ds = project.create_dataset("dl", dataframe=sample_frame())
    target = tmp_path / "out" / "copy.parquet"
    target.parent.mkdir()
    written = ds.download(target)
    assert Path(written) == target
    assert pq.read_table(target).equals(ds.to_arrow())
    assert hashlib.sha256(target.read_bytes()).hexdigest() == ds.content_hash
    assert target.stat().st_size == ds.size_bytes
    assert not list(target.parent.glob("*.part"))


@pytest.mark.parametrize(
    ("name", "file_name"),
    [
        ("monthly sales", "monthly sales.parquet"),
        ("../../escape/2024", ".._.._escape_2024.parquet"),
        ("a\\b", "a_b.parquet"),
    ],
    ids=["plain", "slashes-and-dots", "backslash"],
)
def test_download_into_a_directory_names_the_file_after_the_dataset(project, tmp_path, name, file_name):
    """download(directory) writes <directory>/<dataset name>.parquet, path separators of the name replaced."""
    ds = project.create_dataset(name, dataframe=pd.DataFrame({"a": [1, 2]}))
    directory = tmp_path / "one" / "two"
    directory.mkdir(parents=True)
    written = ds.download(directory)
    assert Path(written) == directory / file_name
    assert pq.read_table(written).column("a").to_pylist() == [1, 2]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [directory / file_name]
