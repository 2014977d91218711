"""File datasources that cannot be read: a typed error naming the problem, a failed job, nothing stored."""

from __future__ import annotations

import pytest
from conftest import RunningPlatform
from fileservers import FILE_TYPES, FileServers, make_connector, session_file_servers, source_kwargs

import previsio_sdk as pio


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> FileServers:
    """The session's file servers."""
    return session_file_servers(tmp_path_factory.getbasetemp())


def assert_nothing_stored(project: pio.Project, platform: RunningPlatform) -> None:
    """No dataset is listed and no temporary file is left behind."""
    assert project.list_datasets() == []
    assert list((platform.home / "tmp").iterdir()) == []


@pytest.mark.parametrize("kind", FILE_TYPES)
def test_missing_file_is_refused_at_creation(project: pio.Project, servers: FileServers, kind: str) -> None:
    """A datasource on a file that does not exist is refused with source_not_found, naming the path."""
    connector = make_connector(project, kind, servers)
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(
            connector, "missing", path="nowhere/missing.csv", **source_kwargs(kind, servers)
        )
    assert info.value.code == "source_not_found"
    assert "nowhere/missing.csv" in info.value.message
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(
            connector, "no-match", path="monthly/1999-*.csv", **source_kwargs(kind, servers)
        )
    assert info.value.code == "source_not_found"


@pytest.mark.parametrize("kind", FILE_TYPES)
def test_missing_file_fails_the_snapshot(
    project: pio.Project, servers: FileServers, platform: RunningPlatform, kind: str
) -> None:
    """With check=False the snapshot job fails with source_not_found and keeps no dataset."""
    connector = make_connector(project, kind, servers)
    source = project.create_datasource(
        connector, "missing", path="missing.csv", check=False, **source_kwargs(kind, servers)
    )
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("missing", datasource=source)
    assert info.value.code == "source_not_found"
    assert "missing.csv" in info.value.message
    assert_nothing_stored(project, platform)


UNREADABLE = {
    "broken/not-parquet.parquet": "Parquet",
    "broken/not-gzip.csv.gz": "gzip",
    "broken/bad.jsonl": "JSON",
    "broken/empty.csv": "empty",
    "broken/report.xlsx": "format",
}


@pytest.mark.parametrize("kind", FILE_TYPES)
@pytest.mark.parametrize("path", sorted(UNREADABLE))
def test_unreadable_file_is_refused_at_creation(
    project: pio.Project, servers: FileServers, kind: str, path: str
) -> None:
    """A file that cannot be read in its format is refused with invalid_source, saying what is wrong."""
    connector = make_connector(project, kind, servers)
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(connector, "unreadable", path=path, **source_kwargs(kind, servers))
    assert info.value.code == "invalid_source"
    assert UNREADABLE[path] in info.value.message


@pytest.mark.parametrize("kind", ("local", "sftp"))
def test_unreadable_file_fails_the_snapshot(
    project: pio.Project, servers: FileServers, platform: RunningPlatform, kind: str
) -> None:
    """With check=False an unreadable file fails the job with invalid_source and stores nothing."""
    connector = make_connector(project, kind, servers)
    for path in ("broken/not-parquet.parquet", "broken/not-gzip.csv.gz"):
        source = project.create_datasource(connector, path, path=path, check=False)
        with pytest.raises(pio.JobFailedError) as info:
            project.create_dataset(path.replace("/", "-"), datasource=source)
        assert info.value.code == "invalid_source"
    assert_nothing_stored(project, platform)


@pytest.mark.parametrize("kind", ("local", "ftp", "s3"))
def test_failure_part_way_stores_nothing(
    project: pio.Project, servers: FileServers, platform: RunningPlatform, kind: str
) -> None:
    """A value that breaks the inferred type after the first block fails the job: no dataset, no temp file."""
    connector = make_connector(project, kind, servers)
    source = project.create_datasource(
        connector,
        "late",
        path="broken/late-conflict.csv",
        options={"block_size": 65536},
        **source_kwargs(kind, servers),
    )
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("late", datasource=source)
    assert info.value.code == "read_failed"
    assert "oops" in info.value.message and "column_types" in info.value.message
    assert_nothing_stored(project, platform)
    # The hint in the message works: the column read as text snapshots fine.
    fixed = project.create_datasource(
        connector,
        "late-text",
        path="broken/late-conflict.csv",
        options={"block_size": 65536, "column_types": {"n": "string"}},
        **source_kwargs(kind, servers),
    )
    assert project.create_dataset("late-text", datasource=fixed).num_rows == 40_001


@pytest.mark.parametrize("kind", ("ftp", "sftp", "s3", "http"))
def test_wrong_credentials_fail_the_snapshot_without_leaking_them(
    project: pio.Project, servers: FileServers, platform: RunningPlatform, kind: str
) -> None:
    """A wrong password fails the snapshot with authentication_failed, the secret redacted everywhere."""
    wrong = f"Leaky-Secret-{kind}-9876"
    connector = make_connector(project, kind, servers, password=wrong)
    with pytest.raises(pio.ValidationError) as created:
        project.create_datasource(connector, "checked", path="orders.csv", **source_kwargs(kind, servers))
    assert created.value.code == "authentication_failed"
    source = project.create_datasource(
        connector, "unchecked", path="orders.csv", check=False, **source_kwargs(kind, servers)
    )
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("unchecked", datasource=source)
    assert info.value.code == "authentication_failed"
    assert wrong not in info.value.message and wrong not in created.value.message
    assert wrong not in platform.log_text()
    assert_nothing_stored(project, platform)


def test_unreachable_server_fails_the_snapshot(
    project: pio.Project, servers: FileServers, platform: RunningPlatform
) -> None:
    """A snapshot through a connector whose host does not resolve fails with connection_failed."""
    connector = make_connector(project, "ftp", servers, host="no-such-host.invalid")
    source = project.create_datasource(connector, "away", path="orders.csv", check=False)
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("away", datasource=source)
    assert info.value.code == "connection_failed"
    assert "no-such-host.invalid" in info.value.message
    assert_nothing_stored(project, platform)


def test_s3_datasource_needs_a_bucket(project: pio.Project, servers: FileServers) -> None:
    """An S3 datasource without bucket= is refused; other connectors refuse a bucket."""
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(make_connector(project, "s3", servers), "no-bucket", path="orders.csv")
    assert "bucket" in info.value.message
    with pytest.raises(pio.ValidationError):
        project.create_datasource(
            make_connector(project, "local", servers), "bucket", path="orders.csv", bucket="lake"
        )


def test_missing_bucket_is_source_not_found(project: pio.Project, servers: FileServers) -> None:
    """A bucket that does not exist is reported as source_not_found."""
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(
            make_connector(project, "s3", servers),
            "no-such-bucket",
            path="orders.csv",
            bucket="no-such-bucket",
        )
    assert info.value.code == "source_not_found"


def test_directory_is_not_a_file(project: pio.Project, servers: FileServers) -> None:
    """A datasource naming a directory with a data extension is refused with invalid_source."""
    (servers.files_root / "dir.csv").mkdir(exist_ok=True)
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(make_connector(project, "local", servers), "dir", path="dir.csv")
    assert info.value.code == "invalid_source"
    assert "directory" in info.value.message
