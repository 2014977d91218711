"""Failures of SQL datasources and snapshots: each typed, explained, and leaving no half dataset behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import MY_PASSWORD, MY_USER, PG_SCRAM_PASSWORD, PG_SCRAM_USER, RunningPlatform, SQLBackend

import previsio_sdk as pio


def _files(directory: Path) -> set[str]:
    return set(os.listdir(directory)) if directory.exists() else set()


def test_missing_table_is_refused_at_creation(project: pio.Project, sql_backend: SQLBackend) -> None:
    """A datasource on a table that does not exist is refused with ValidationError, code source_not_found."""
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(sql_backend.connector, "ghost", table="no_such_table")
    assert info.value.code == "source_not_found"
    assert info.value.status == 422
    assert project.list_datasource() == []


def test_unchecked_missing_table_fails_the_snapshot_and_frees_the_name(
    project: pio.Project, sql_backend: SQLBackend, unique_name: Callable[[str], str]
) -> None:
    """A snapshot of a missing table fails (source_not_found), is not listed, and its name can be reused."""
    table = unique_name("later")
    source = project.create_datasource(sql_backend.connector, "later", table=table, check=False)
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("snap", datasource=source)
    assert info.value.code == "source_not_found"
    assert info.value.message and info.value.job_id
    assert project.list_datasets() == []
    sql_backend.exec(f"CREATE TABLE {table} (id integer)")
    sql_backend.exec(f"INSERT INTO {table} VALUES (1), (2)")
    dataset = project.create_dataset("snap", datasource=source)
    assert dataset.num_rows == 2
    assert [d.name for d in project.list_datasets()] == ["snap"]


def test_table_dropped_before_the_snapshot_fails_the_job(
    project: pio.Project, sql_backend: SQLBackend, unique_name: Callable[[str], str]
) -> None:
    """A table dropped after its datasource was created makes the snapshot fail with source_not_found."""
    table = unique_name("dropped")
    sql_backend.exec(f"CREATE TABLE {table} (id integer)")
    source = project.create_datasource(sql_backend.connector, "dropped", table=table)
    sql_backend.exec(f"DROP TABLE {table}")
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("dropped", datasource=source)
    assert info.value.code == "source_not_found"
    assert project.list_datasets() == []


BAD_REQUESTS = [
    # (request, whether the statement parser refuses it: then even an unchecked datasource is refused)
    pytest.param("SELEC id FROM {t}", True, id="syntax-error"),
    pytest.param("SELECT no_such_column FROM {t}", False, id="unknown-column"),
    pytest.param("SELECT id FROM {t} WHERE", True, id="truncated"),
]


@pytest.mark.parametrize(("bad", "unreadable"), BAD_REQUESTS)
def test_bad_request_is_refused_at_creation_and_fails_unchecked_snapshots(
    project: pio.Project,
    sql_backend: SQLBackend,
    unique_name: Callable[[str], str],
    bad: str,
    unreadable: bool,
) -> None:
    """A request the database cannot run is refused, code invalid_source; one the statement parser cannot
    read is refused unchecked too, and one it can read fails an unchecked snapshot."""
    table = unique_name("req")
    sql_backend.exec(f"CREATE TABLE {table} (id integer)")
    request = bad.format(t=table)
    with pytest.raises(pio.ValidationError) as refused:
        project.create_datasource(sql_backend.connector, "bad", request=request)
    assert refused.value.code == "invalid_source"
    if unreadable:
        with pytest.raises(pio.ValidationError) as refused:
            project.create_datasource(sql_backend.connector, "bad", request=request, check=False)
        assert refused.value.code == "invalid_source"
        assert project.list_datasource() == []
        return
    source = project.create_datasource(sql_backend.connector, "bad", request=request, check=False)
    with pytest.raises(pio.JobFailedError) as failed:
        project.create_dataset("bad", datasource=source)
    assert failed.value.code == "invalid_source"
    assert project.list_datasets() == []


def test_request_on_a_missing_table_is_source_not_found(
    project: pio.Project, sql_backend: SQLBackend
) -> None:
    """A request reading a table that does not exist is refused with code source_not_found."""
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(sql_backend.connector, "q", request="SELECT * FROM no_such_table")
    assert info.value.code == "source_not_found"


#: driver -> (user, password) of a server user; the port is the closed one.
CREDENTIALS = {"postgresql": (PG_SCRAM_USER, PG_SCRAM_PASSWORD), "mysql": (MY_USER, MY_PASSWORD)}


@pytest.mark.parametrize("driver", sorted(CREDENTIALS))
def test_closed_port_fails_checked_creation_and_unchecked_snapshot(
    project: pio.Project, closed_port: int, driver: str
) -> None:
    """With nothing listening, creation is refused and an unchecked snapshot fails, as connection_failed."""
    user, password = CREDENTIALS[driver]
    connector = project.create_sql_connector(
        "closed",
        host="127.0.0.1",
        port=closed_port,
        username=user,
        password=password,
        driver=driver,
        database="anything",
    )
    with pytest.raises(pio.ValidationError) as refused:
        project.create_datasource(connector, "t", table="t")
    assert refused.value.code == "connection_failed"
    source = project.create_datasource(connector, "t", table="t", check=False)
    started = time.monotonic()
    with pytest.raises(pio.JobFailedError) as failed:
        project.create_dataset("t", datasource=source)
    assert failed.value.code == "connection_failed"
    assert time.monotonic() - started < 15
    assert password not in failed.value.message and password not in refused.value.message
    assert project.list_datasets() == []


# -- values a column's type cannot hold ----------------------------------------------------------------------
def test_sqlite_value_that_is_not_a_date_fails_the_snapshot_with_read_failed(
    project: pio.Project, sqlite_path: Path
) -> None:
    """An SQLite DATE column holding "not a date" fails the snapshot with read_failed, not internal_error."""
    import sqlite3

    con = sqlite3.connect(sqlite_path)
    with con:
        con.execute("CREATE TABLE events (id INTEGER, day DATE)")
        con.execute("INSERT INTO events VALUES (1, '2024-02-29'), (2, 'not a date')")
    con.close()
    connector = project.create_sql_connector("lite", driver="sqlite", database=str(sqlite_path))
    source = project.create_datasource(connector, "events", table="events", check=False)
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("events", datasource=source)
    assert info.value.code == "read_failed"
    assert "not a date" in info.value.message
    assert project.list_datasets() == []


def test_mariadb_zero_date_fails_the_snapshot_with_read_failed(
    project: pio.Project,
    my_connector: pio.SQLConnector,
    my_exec: Callable[..., list],
    unique_name: Callable[[str], str],
) -> None:
    """A MariaDB zero date ('0000-00-00', legal outside strict modes) fails the snapshot as read_failed."""
    table = unique_name("zero_dates")
    my_exec(f"CREATE TABLE {table} (id int, day date)")
    my_exec(f"INSERT INTO {table} VALUES (1, '2024-02-29'), (2, '0000-00-00')")
    assert len(my_exec(f"SELECT * FROM {table}")) == 2
    source = project.create_datasource(my_connector, "zero", table=table)
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("zero", datasource=source)
    assert info.value.code == "read_failed"
    assert project.list_datasets() == []


@pytest.mark.parametrize("value", ["123456789012345678901234567890.5", "NaN"])
def test_postgres_numeric_value_too_wide_for_arrow_fails_instead_of_being_corrupted(
    project: pio.Project,
    pg_connector: pio.SQLConnector,
    pg_exec: Callable[..., list],
    unique_name: Callable[[str], str],
    value: str,
) -> None:
    """A numeric value decimal128(38, 10) cannot store fails the snapshot (read_failed), never wraps."""
    table = unique_name("wide")
    pg_exec(f"CREATE TABLE {table} (id int, v numeric)")
    pg_exec(f"INSERT INTO {table} VALUES (1, 1.25), (2, %s::numeric)", (value,))
    source = project.create_datasource(pg_connector, "wide", table=table)
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("wide", datasource=source)
    assert info.value.code == "read_failed"
    assert project.list_datasets() == []


def test_postgres_numeric_with_more_decimals_than_the_scale_is_rounded(
    project: pio.Project,
    pg_connector: pio.SQLConnector,
    pg_exec: Callable[..., list],
    unique_name: Callable[[str], str],
) -> None:
    """Unconstrained numerics keep 10 decimals, rounded half-even; values within 38 digits stay exact."""
    from decimal import Decimal

    table = unique_name("decimals")
    pg_exec(f"CREATE TABLE {table} (id int, v numeric)")
    pg_exec(
        f"INSERT INTO {table} VALUES (1, 1::numeric / 3), (2, 2::numeric / 3), "
        f"(3, 1234567890123456789012345678.0123456789), (4, -0.00000000005), (5, NULL)"
    )
    source = project.create_datasource(pg_connector, "decimals", table=table)
    dataset = project.create_dataset("decimals", datasource=source)
    assert [c.type for c in dataset.schema] == ["int32", "decimal128(38, 10)"]
    values = {r["id"]: r["v"] for r in dataset.to_arrow().to_pylist()}
    assert values == {
        1: Decimal("0.3333333333"),
        2: Decimal("0.6666666667"),
        3: Decimal("1234567890123456789012345678.0123456789"),
        4: Decimal("-0E-10"),
        5: None,
    }


# -- the database goes away in the middle of a snapshot ------------------------------------------------------
def test_postgres_backend_killed_mid_snapshot_fails_the_job_and_leaves_no_file(
    project: pio.Project,
    pg_connector: pio.SQLConnector,
    pg_exec: Callable[..., list],
    pg_database: str,
    platform: RunningPlatform,
    unique_name: Callable[[str], str],
) -> None:
    """Killing the snapshot's PostgreSQL backend fails the job with a reason, leaving no dataset, no file."""
    table = unique_name("killed")
    pg_exec(
        f"CREATE UNLOGGED TABLE {table} AS SELECT g AS id, md5(g::text) AS label, g * 0.5 AS amount "
        f"FROM generate_series(1, 3000000) g"
    )
    datasets_dir, tmp_dir = platform.home / "datasets", platform.home / "tmp"
    datasets_before, tmp_before = _files(datasets_dir), _files(tmp_dir)
    source = project.create_datasource(pg_connector, "killed", table=table)
    job = project.create_dataset("killed", datasource=source, wait=False)
    deadline = time.monotonic() + 60
    killed: list[tuple] = []
    while not killed:
        assert time.monotonic() < deadline, "the snapshot never got going"
        state = job.refresh()
        assert not state.done, f"the snapshot ended before it could be interrupted: {state}"
        if state.progress_rows > 0:  # rows are being written: the backend is mid-stream
            killed = pg_exec(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE usename = %s AND datname = %s AND pid <> pg_backend_pid() AND query LIKE %s",
                (PG_SCRAM_USER, pg_database, f"%{table}%"),
            )
        time.sleep(0.05)
    assert all(ok for _pid, ok in killed)
    with pytest.raises(pio.JobFailedError) as info:
        job.wait(timeout=60)
    assert info.value.code in ("connection_failed", "read_failed"), info.value
    assert "terminat" in info.value.message.lower(), info.value.message
    final = job.refresh()
    assert final.status == "failed" and final.dataset_id is None and final.progress_rows < 3_000_000
    assert project.list_datasets() == []
    assert _files(datasets_dir) == datasets_before
    assert _files(tmp_dir) - tmp_before == set()
    # The name is free again, and the table is intact for a second, complete snapshot.
    assert project.create_dataset("killed", datasource=source).num_rows == 3_000_000
