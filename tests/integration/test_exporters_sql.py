"""Exporters to SQL tables: every table write mode on PostgreSQL, MariaDB and SQLite, all or nothing.

Datasets are uploaded as Parquet files (their Arrow types are kept exactly), exported through the public SDK
to the real database servers of the suite, and the tables are checked with the databases' own clients.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import (
    MY_USER,
    PG_HOST,
    PG_PORT,
    PG_SCRAM_USER,
    PG_SUPERUSER,
    RunningPlatform,
    SQLBackend,
    _mysql_root,
    start_platform,
    stop_platform,
)

import previsio_sdk as pio

HOSTILE = 'x"; DROP TABLE y; --'


# -- helpers -------------------------------------------------------------------------------------------------
def q(backend: SQLBackend, name: str) -> str:
    """``name`` quoted for ``backend``'s SQL."""
    if backend.driver == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def upload(project: pio.Project, table: pa.Table, tmp_path: Path, name: str | None = None) -> pio.Dataset:
    """A dataset of the project holding ``table`` exactly (uploaded as Parquet)."""
    name = name or f"ds_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path)
    return project.create_dataset(name, file_name=path, progress=False)


def people(ids: list[int], suffix: str = "") -> pa.Table:
    """Rows ``(id, name, score)``."""
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array([f"name {i}{suffix}" for i in ids], pa.string()),
            "score": pa.array([i * 1.5 for i in ids], pa.float64()),
        }
    )


def rows(backend: SQLBackend, table: str, columns: str = "id, name, score") -> list[tuple[Any, ...]]:
    """The rows of ``table``, ordered by id, as plain Python values."""
    out = backend.exec(f"SELECT {columns} FROM {q(backend, table)} ORDER BY id")
    return [tuple(float(v) if isinstance(v, Decimal) else v for v in row) for row in out]


def create_table(backend: SQLBackend, table: str, columns: str) -> None:
    """Create ``table`` as the database superuser, owned by the connector's user on PostgreSQL."""
    backend.exec(f"CREATE TABLE {q(backend, table)} ({columns})")
    if backend.driver == "postgresql":
        backend.exec(f"ALTER TABLE {q(backend, table)} OWNER TO {PG_SCRAM_USER}")


def table_exists(backend: SQLBackend, table: str) -> bool:
    if backend.driver == "postgresql":
        return bool(backend.exec("SELECT to_regclass(%s)", (q(backend, table),))[0][0])
    if backend.driver == "mysql":
        found = backend.exec(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = %s",
            (table,),
        )
        return bool(found[0][0])
    return bool(backend.exec("SELECT COUNT(*) FROM sqlite_master WHERE name = ?", (table,))[0][0])


def failed(exporter: pio.Exporter, dataset: pio.Dataset) -> pio.JobFailedError:
    """The error of an export that must fail."""
    with pytest.raises(pio.JobFailedError) as info:
        exporter.export_dataset(dataset, progress=False, wait_for_export=True)
    return info.value


@pytest.fixture
def table_name(unique_name: Callable[[str], str]) -> str:
    """A table name no other test uses."""
    return unique_name("exp")


# -- the write modes -----------------------------------------------------------------------------------------
def test_replace_creates_the_table_then_replaces_it(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """replace creates a missing table from the dataset, then replaces it (rows, columns) next time."""
    exporter = project.create_exporter(sql_backend.connector, "out", table=table_name, write_mode="replace")
    export = exporter.export_dataset(
        upload(project, people([1, 2, 3]), tmp_path), progress=False, wait_for_export=True
    )
    assert (export.status, export.rows, export.error_code) == ("succeeded", 3, None)
    assert table_name in (export.destination or "")
    assert rows(sql_backend, table_name) == [(1, "name 1", 1.5), (2, "name 2", 3.0), (3, "name 3", 4.5)]

    other = pa.table({"id": pa.array([7], pa.int64()), "label": pa.array(["seven"])})
    exporter.export_dataset(upload(project, other, tmp_path), progress=False, wait_for_export=True)
    assert rows(sql_backend, table_name, "id, label") == [(7, "seven")]


def test_append_creates_a_missing_table_then_adds_rows(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """append creates a missing table, then adds the rows of each export to it."""
    exporter = project.create_exporter(
        sql_backend.connector, "out", table=table_name, write_mode=pio.ExporterWriteMode.append
    )
    exporter.export_dataset(upload(project, people([1, 2]), tmp_path), progress=False, wait_for_export=True)
    export = exporter.export_dataset(
        upload(project, people([3]), tmp_path), progress=False, wait_for_export=True
    )
    assert export.rows == 1
    assert [r[0] for r in rows(sql_backend, table_name)] == [1, 2, 3]


def test_append_into_an_existing_table_converts_to_its_column_types(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """Rows appended to a table made elsewhere take its column types (int64 to INTEGER, float to NUMERIC)."""
    create_table(
        sql_backend, table_name, "id INTEGER NOT NULL, name VARCHAR(50), score NUMERIC(10, 2), note TEXT"
    )
    sql_backend.exec(f"INSERT INTO {q(sql_backend, table_name)} (id, name, score) VALUES (1, 'old', 0.5)")
    exporter = project.create_exporter(sql_backend.connector, "out", table=table_name, write_mode="append")
    exporter.export_dataset(upload(project, people([2, 3]), tmp_path), progress=False, wait_for_export=True)
    assert rows(sql_backend, table_name, "id, name, score, note") == [
        (1, "old", 0.5, None),
        (2, "name 2", 3.0, None),
        (3, "name 3", 4.5, None),
    ]


def test_upsert_replaces_rows_of_the_same_key_and_adds_the_others(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """upsert by key=["id"]: rows whose id exists are replaced, the others added, the rest left alone."""
    exporter = project.create_exporter(
        sql_backend.connector, "out", table=table_name, write_mode="upsert", key=["id"]
    )
    assert exporter.key == ["id"]
    exporter.export_dataset(
        upload(project, people([1, 2, 3]), tmp_path), progress=False, wait_for_export=True
    )
    export = exporter.export_dataset(
        upload(project, people([2, 4], " v2"), tmp_path), progress=False, wait_for_export=True
    )
    assert export.rows == 2
    assert rows(sql_backend, table_name) == [
        (1, "name 1", 1.5),
        (2, "name 2 v2", 3.0),
        (3, "name 3", 4.5),
        (4, "name 4 v2", 6.0),
    ]


def test_upsert_with_a_composite_key_into_an_existing_table(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """A key of two columns matches rows on both; the table's other columns keep their types."""
    create_table(sql_backend, table_name, "region VARCHAR(10), id INTEGER, total NUMERIC(8, 2)")
    table = q(sql_backend, table_name)
    sql_backend.exec(f"INSERT INTO {table} VALUES ('eu', 1, 10), ('us', 1, 20), ('eu', 2, 30)")
    exporter = project.create_exporter(
        sql_backend.connector, "out", table=table_name, write_mode="upsert", key=["region", "id"]
    )
    data = pa.table({"region": ["us", "eu"], "id": pa.array([1, 3], pa.int64()), "total": [21.5, 40.0]})
    exporter.export_dataset(upload(project, data, tmp_path), progress=False, wait_for_export=True)
    got = sql_backend.exec(f"SELECT region, id, total FROM {table} ORDER BY region, id")
    assert [(r, i, float(t)) for r, i, t in got] == [
        ("eu", 1, 10.0),
        ("eu", 2, 30.0),
        ("eu", 3, 40.0),
        ("us", 1, 21.5),
    ]


@pytest.mark.parametrize("mode", ["safe", "timestamp"])
def test_file_write_modes_are_refused_for_a_table(
    project: pio.Project, sql_backend: SQLBackend, mode: str
) -> None:
    """A file write mode on a table is a ValidationError at the exporter's creation, naming the right ones."""
    with pytest.raises(pio.ValidationError) as info:
        project.create_exporter(sql_backend.connector, "out", table="t", write_mode=mode)
    assert "replace, append, upsert" in info.value.message
    assert project.list_exporter() == []


def test_default_write_mode_is_safe_and_refused_for_a_table(
    project: pio.Project, sql_backend: SQLBackend
) -> None:
    """The default mode (safe) is a file mode: a table exporter must choose its mode."""
    with pytest.raises(pio.ValidationError):
        project.create_exporter(sql_backend.connector, "out", table="t")


@pytest.mark.parametrize(
    ("mode", "key"),
    [("upsert", None), ("upsert", []), ("append", ["id"]), ("replace", ["id"]), ("upsert", ["id", "id"])],
)
def test_keys_must_fit_the_mode(project: pio.Project, sql_backend: SQLBackend, mode: str, key: Any) -> None:
    """upsert needs key columns (each once); the other modes take none."""
    with pytest.raises(pio.ValidationError) as info:
        project.create_exporter(sql_backend.connector, "out", table="t", write_mode=mode, key=key)
    assert info.value.details["field"] == "key"


def test_a_table_destination_takes_no_path(project: pio.Project, sql_backend: SQLBackend) -> None:
    """path= on an SQL connector, or no table at all, is a ValidationError at creation."""
    with pytest.raises(pio.ValidationError):
        project.create_exporter(sql_backend.connector, "a", path="x.csv", write_mode="replace")
    with pytest.raises(pio.ValidationError):
        project.create_exporter(sql_backend.connector, "b", write_mode="replace")


# -- failures change nothing ---------------------------------------------------------------------------------
def test_append_with_an_incompatible_schema_fails_before_writing(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """Text into an INTEGER column, or a column the table lacks: incompatible_schema, the table untouched."""
    create_table(sql_backend, table_name, "id INTEGER, name VARCHAR(50)")
    sql_backend.exec(f"INSERT INTO {q(sql_backend, table_name)} VALUES (1, 'kept')")
    exporter = project.create_exporter(sql_backend.connector, "out", table=table_name, write_mode="append")
    wrong = pa.table({"id": ["one", "two"], "name": ["a", "b"], "extra": [1, 2]})
    error = failed(exporter, upload(project, wrong, tmp_path))
    assert error.code == "incompatible_schema"
    assert "'id'" in error.message and "'extra'" in error.message
    assert rows(sql_backend, table_name, "id, name") == [(1, "kept")]
    export = exporter.list_exports()[-1]
    assert (export.status, export.error_code, export.rows) == ("failed", "incompatible_schema", None)


def test_upsert_on_a_key_column_missing_from_the_dataset_fails_before_writing(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """An upsert whose key column the dataset lacks fails with incompatible_schema; the table is untouched."""
    exporter = project.create_exporter(sql_backend.connector, "first", table=table_name, write_mode="replace")
    exporter.export_dataset(upload(project, people([1]), tmp_path), progress=False, wait_for_export=True)
    upserter = project.create_exporter(
        sql_backend.connector, "up", table=table_name, write_mode="upsert", key=["customer_id"]
    )
    error = failed(upserter, upload(project, people([1, 2], " new"), tmp_path))
    assert error.code == "incompatible_schema"
    assert "customer_id" in error.message
    assert rows(sql_backend, table_name) == [(1, "name 1", 1.5)]


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_a_failure_in_the_middle_of_the_rows_leaves_the_table_as_it_was(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path, mode: str
) -> None:
    """150,000 rows whose last one breaks a NOT NULL constraint: the export fails, no row of it stays."""
    create_table(sql_backend, table_name, "id BIGINT, name VARCHAR(200) NOT NULL, pad TEXT")
    sql_backend.exec(f"INSERT INTO {q(sql_backend, table_name)} (id, name) VALUES (1, 'a'), (2, 'b')")
    n = 150_000
    data = pa.table(
        {
            "id": pa.array(range(10, 10 + n), pa.int64()),
            "name": pa.array([f"row {i}" for i in range(n - 1)] + [None], pa.string()),
            # ~16 MB of rows: MySQL receives several LOAD DATA chunks before the bad row.
            "pad": pa.array(["p" * 100] * n),
        }
    )
    key = ["id"] if mode == "upsert" else None
    exporter = project.create_exporter(
        sql_backend.connector, "out", table=table_name, write_mode=mode, key=key
    )
    error = failed(exporter, upload(project, data, tmp_path))
    assert error.code == "write_failed", error.message
    assert rows(sql_backend, table_name, "id, name") == [(1, "a"), (2, "b")]


def test_hostile_table_names_are_quoted_not_interpolated(
    project: pio.Project, sql_backend: SQLBackend, tmp_path: Path
) -> None:
    """A table named 'x"; DROP TABLE y; --' is created under that literal name; table y survives."""
    if not table_exists(sql_backend, "y"):
        create_table(sql_backend, "y", "id INTEGER")
    exporter = project.create_exporter(sql_backend.connector, "out", table=HOSTILE, write_mode="replace")
    export = exporter.export_dataset(
        upload(project, people([1, 2]), tmp_path), progress=False, wait_for_export=True
    )
    assert export.status == "succeeded"
    assert table_exists(sql_backend, "y")
    assert [r[0] for r in rows(sql_backend, HOSTILE)] == [1, 2]
    upserter = project.create_exporter(
        sql_backend.connector, "up", table=HOSTILE, write_mode="upsert", key=["id"]
    )
    upserter.export_dataset(upload(project, people([2, 3]), tmp_path), progress=False, wait_for_export=True)
    assert [r[0] for r in rows(sql_backend, HOSTILE)] == [1, 2, 3]
    assert table_exists(sql_backend, "y")
    sql_backend.exec(f"DROP TABLE {q(sql_backend, HOSTILE)}")


def test_hostile_column_names_are_quoted(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """Column names holding quotes, backticks, percent signs and spaces are written as they are."""
    names = ['a"b', "c`d", "50%", "with space", "id"]
    data = pa.table({n: pa.array([1, 2], pa.int64()) for n in names})
    exporter = project.create_exporter(sql_backend.connector, "out", table=table_name, write_mode="append")
    exporter.export_dataset(upload(project, data, tmp_path), progress=False, wait_for_export=True)
    exporter.export_dataset(upload(project, data, tmp_path), progress=False, wait_for_export=True)
    columns = ", ".join(q(sql_backend, n) for n in names)
    assert rows(sql_backend, table_name, columns) == [(1,) * 5, (1,) * 5, (2,) * 5, (2,) * 5]


def test_an_overlong_postgres_table_name_is_refused(
    project: pio.Project, pg_connector: pio.SQLConnector
) -> None:
    """PostgreSQL would cut a name past 63 bytes and write another table: refused at creation instead."""
    with pytest.raises(pio.ValidationError):
        project.create_exporter(pg_connector, "out", table="t" * 64, write_mode="replace")


# -- round trip ----------------------------------------------------------------------------------------------
def typed_table() -> pa.Table:
    """Two rows and a row of NULLs in the usual column types."""
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


#: What each database gives back for the types it cannot keep (an SQLite INTEGER reads as int64...).
ROUND_TRIP_CHANGES: dict[str, dict[str, pa.DataType]] = {
    "postgresql": {},
    "mysql": {"paid": pa.int8(), "at_utc": pa.timestamp("us")},
    "sqlite": {"qty": pa.int64(), "at_utc": pa.timestamp("us")},
}


def test_round_trip_snapshot_export_snapshot_keeps_rows_and_types(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """A dataset exported to a new table and snapshotted again has the same rows, and the same types where the
    database has them (MySQL has no boolean and no zoned DATETIME; SQLite has one integer type)."""
    original = typed_table()
    dataset = upload(project, original, tmp_path)
    exporter = project.create_exporter(sql_backend.connector, "out", table=table_name, write_mode="replace")
    exporter.export_dataset(dataset, progress=False, wait_for_export=True)
    source = project.create_datasource(sql_backend.connector, "back", table=table_name)
    again = project.create_dataset("again", datasource=source, progress=False).to_arrow()

    changes = ROUND_TRIP_CHANGES[sql_backend.driver]
    expected_schema = pa.schema([pa.field(f.name, changes.get(f.name, f.type)) for f in original.schema])
    assert again.schema.remove_metadata() == expected_schema
    expected = original.cast(expected_schema)  # a zoned instant comes back as its UTC wall-clock time
    assert again.sort_by("id").to_pylist() == expected.to_pylist()


def test_export_file_and_export_dataframe_append_their_rows(
    project: pio.Project, sql_backend: SQLBackend, table_name: str, tmp_path: Path
) -> None:
    """A local CSV file and a pandas DataFrame are exported like datasets; the exports record their source."""
    exporter = project.create_exporter(sql_backend.connector, "out", table=table_name, write_mode="append")
    csv = tmp_path / "rows.csv"
    csv.write_text("id,name,score\n1,from csv,1.5\n")
    by_file = exporter.export_file(csv, progress=False, wait_for_export=True)
    by_frame = exporter.export_dataframe(people([2]).to_pandas(), progress=False, wait_for_export=True)
    assert (by_file.source, by_file.file_name, by_file.rows) == ("file", "rows.csv", 1)
    assert (by_frame.source, by_frame.rows, by_frame.dataset_id) == ("dataframe", 1, None)
    assert rows(sql_backend, table_name) == [(1, "from csv", 1.5), (2, "name 2", 3.0)]


# -- interrupted exports -------------------------------------------------------------------------------------
def _kill_when(
    find: Callable[[], list[Any]], kill: Callable[[Any], None], timeout: float = 60
) -> threading.Thread:
    """A thread that kills the first session ``find`` returns, as soon as one shows up."""

    def run() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = find()
            if found:
                kill(found[0])
                return
            time.sleep(0.005)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def big_table(n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(n), pa.int64()), "name": pa.array([f"row {i}" for i in range(n)])})


def test_a_postgres_export_killed_during_copy_leaves_the_table_as_it_was(
    project: pio.Project, pg_connector: pio.SQLConnector, pg_database: str, table_name: str, tmp_path: Path
) -> None:
    """The export's session is terminated in the middle of its COPY: the export fails, the old table stays."""
    exporter = project.create_exporter(pg_connector, "out", table=table_name, write_mode="replace")
    exporter.export_dataset(upload(project, people([1, 2]), tmp_path), progress=False, wait_for_export=True)
    dataset = upload(project, big_table(2_000_000), tmp_path)

    def sql(statement: str) -> list[Any]:
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname=pg_database, autocommit=True
        ) as c:
            return c.execute(statement).fetchall()

    killer = _kill_when(
        lambda: sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'previsio-export' "
            "AND query LIKE 'COPY%' AND state = 'active'"
        ),
        lambda row: sql(f"SELECT pg_terminate_backend({int(row[0])})"),
    )
    error = failed(exporter, dataset)
    killer.join()
    assert error.code in ("connection_failed", "write_failed"), error.message
    pg = SQLBackend("postgresql", pg_connector, lambda s, p=None: sql(s))
    assert rows(pg, table_name) == [(1, "name 1", 1.5), (2, "name 2", 3.0)]
    assert sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'previsio_stage%'") == [(0,)]


@pytest.mark.parametrize(
    ("kill", "code"),
    [
        ("KILL QUERY", "write_failed"),
        # The killed server stops reading the rows sent but may keep the socket open: the export notices
        # when its write timeout (60 s) passes.
        pytest.param("KILL", "connection_failed", marks=pytest.mark.slow),
    ],
)
def test_a_mariadb_export_killed_during_load_leaves_the_table_as_it_was(
    project: pio.Project,
    my_connector: pio.SQLConnector,
    my_database: str,
    table_name: str,
    tmp_path: Path,
    kill: str,
    code: str,
) -> None:
    """The export's statement (or its connection) is killed in the middle of its LOAD DATA: the export fails
    with the reason, and the table keeps exactly its rows."""
    exporter = project.create_exporter(my_connector, "out", table=table_name, write_mode="append")
    exporter.export_dataset(upload(project, people([1, 2]), tmp_path), progress=False, wait_for_export=True)
    dataset = upload(
        project, big_table(2_000_000).append_column("score", pa.array([0.5] * 2_000_000)), tmp_path
    )

    def sql(statement: str) -> list[Any]:
        con = _mysql_root(my_database)
        try:
            with con.cursor() as cur:
                cur.execute(statement)
                return list(cur.fetchall())
        finally:
            con.close()

    killer = _kill_when(
        lambda: sql(
            "SELECT id FROM information_schema.processlist "
            f"WHERE user = '{MY_USER}' AND info LIKE 'LOAD DATA%'"
        ),
        lambda row: sql(f"{kill} {int(row[0])}"),
    )
    error = failed(exporter, dataset)
    killer.join()
    assert error.code == code, error.message
    my = SQLBackend("mysql", my_connector, lambda s, p=None: sql(s))
    assert rows(my, table_name) == [(1, "name 1", 1.5), (2, "name 2", 3.0)]


# -- the resources -------------------------------------------------------------------------------------------
def test_exporters_and_exports_are_listed_fetched_and_deleted(
    project: pio.Project, sqlite_path: Path, tmp_path: Path
) -> None:
    """list_exporter, Exporter.from_id, list_exports, Export.from_id and delete() work as for others."""
    sqlite_path.touch()
    lite = project.create_sql_connector("lite", driver="sqlite", database=str(sqlite_path))
    exporter = project.create_exporter(
        lite, "out", description="nightly", table="t", write_mode=pio.ExporterWriteMode.replace
    )
    assert [e.id for e in project.list_exporter()] == [exporter.id]
    assert [e.id for e in project.list_exporters()] == [exporter.id]
    again = pio.Exporter.from_id(exporter.id, client=project.client)
    assert (again.name, again.description, again.table, again.write_mode) == (
        "out",
        "nightly",
        "t",
        "replace",
    )
    assert again.connector.id == lite.id

    dataset = upload(project, people([1, 2]), tmp_path)
    pending = exporter.export_dataset(dataset, wait_for_export=False)
    assert pending.status in ("pending", "running", "succeeded")
    done = pending.wait(timeout=60, progress=False)
    assert (done.status, done.rows, done.dataset_id, done.destination) == ("succeeded", 2, dataset.id, "t")
    assert done.duration is not None and done.duration >= 0
    assert done.created_at <= done.started_at <= done.finished_at
    assert [e.id for e in exporter.list_exports()] == [done.id]
    assert pio.Export.from_id(done.id, client=project.client).rows == 2

    exporter.delete()
    assert project.list_exporter() == []
    with pytest.raises(pio.NotFoundError):
        pio.Export.from_id(done.id, client=project.client)


def test_a_connector_used_by_an_exporter_is_deleted_only_with_force(
    project: pio.Project, sqlite_path: Path
) -> None:
    """Deleting a connector that an exporter uses is a conflict naming it; force=True deletes both."""
    sqlite_path.touch()
    lite = project.create_sql_connector("lite", driver="sqlite", database=str(sqlite_path))
    exporter = project.create_exporter(lite, "out", table="t", write_mode="append")
    with pytest.raises(pio.ConflictError) as info:
        lite.delete()
    assert info.value.details["exporters"] == [{"id": exporter.id, "name": "out"}]
    lite.delete(force=True)
    assert project.list_exporter() == []


def test_an_exporter_name_is_unique_in_its_project(project: pio.Project, sqlite_path: Path) -> None:
    """A second exporter of the same name is a conflict."""
    sqlite_path.touch()
    lite = project.create_sql_connector("lite", driver="sqlite", database=str(sqlite_path))
    project.create_exporter(lite, "out", table="t", write_mode="append")
    with pytest.raises(pio.ConflictError):
        project.create_exporter(lite, "out", table="u", write_mode="append")


def test_a_dataset_of_another_project_cannot_be_exported(
    project: pio.Project, client: pio.Client, sqlite_path: Path, tmp_path: Path
) -> None:
    """An exporter exports the datasets of its own project only."""
    sqlite_path.touch()
    lite = project.create_sql_connector("lite", driver="sqlite", database=str(sqlite_path))
    exporter = project.create_exporter(lite, "out", table="t", write_mode="append")
    other = pio.Project.new(f"it-other-{uuid.uuid4().hex[:8]}", client=client)
    try:
        dataset = upload(other, people([1]), tmp_path)
        with pytest.raises(pio.NotFoundError):
            exporter.export_dataset(dataset, progress=False, wait_for_export=True)
    finally:
        other.delete()


def test_postgres_schema_qualified_table(
    project: pio.Project,
    pg_connector: pio.SQLConnector,
    pg_exec: Callable[..., Any],
    table_name: str,
    tmp_path: Path,
) -> None:
    """On PostgreSQL, table="schema.table" writes into that schema."""
    pg_exec(f"CREATE SCHEMA IF NOT EXISTS export_it AUTHORIZATION {PG_SCRAM_USER}")
    exporter = project.create_exporter(
        pg_connector, "out", table=f"export_it.{table_name}", write_mode="append"
    )
    export = exporter.export_dataset(
        upload(project, people([1]), tmp_path), progress=False, wait_for_export=True
    )
    assert export.destination is not None and export.destination.endswith(f"export_it.{table_name}")
    assert pg_exec(f"SELECT id, name FROM export_it.{table_name}") == [(1, "name 1")]


def test_a_platform_killed_mid_export_leaves_the_table_and_fails_the_export_at_restart(
    tmp_path: Path, pg_database: str, table_name: str
) -> None:
    """SIGKILL of the platform during a COPY: the transaction dies with it, the table keeps its rows, and
    after a restart the export is failed with platform_restarted."""
    home = tmp_path / "home"
    running = start_platform(home)
    try:
        project = pio.Project.new("sigkill-export", client=running.client())
        connector = project.create_sql_connector(
            "pg", host=PG_HOST, port=PG_PORT, username=PG_SUPERUSER, database=pg_database
        )
        exporter = project.create_exporter(connector, "out", table=table_name, write_mode="replace")
        exporter.export_dataset(
            upload(project, people([1, 2]), tmp_path), progress=False, wait_for_export=True
        )
        export = exporter.export_dataset(
            upload(project, big_table(2_000_000), tmp_path), wait_for_export=False
        )

        def copying() -> list[Any]:
            with psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname=pg_database, autocommit=True
            ) as c:
                return c.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'previsio-export' "
                    "AND query LIKE 'COPY%' AND state = 'active'"
                ).fetchall()

        deadline = time.monotonic() + 60
        while not copying():
            assert time.monotonic() < deadline, "the export never started its COPY"
            time.sleep(0.005)
        os.kill(running.process.pid, signal.SIGKILL)
        running.process.wait(10)
    finally:
        if running.process.poll() is None:
            stop_platform(running)
    restarted = start_platform(home)
    try:
        final = pio.Export.from_id(export.id, client=restarted.client())
        assert (final.status, final.error_code, final.rows) == ("failed", "platform_restarted", None)
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname=pg_database) as c:
            deadline = time.monotonic() + 30  # the server notices the dead client and rolls back
            sessions = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'previsio-export'"
            while c.execute(sessions).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert c.execute(f'SELECT id, name FROM "{table_name}" ORDER BY id').fetchall() == [
                (1, "name 1"),
                (2, "name 2"),
            ]
            staged = "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'previsio_stage%'"
            assert c.execute(staged).fetchone() == (0,)
    finally:
        stop_platform(restarted)


def test_the_platforms_own_database_cannot_be_exported_to(
    project: pio.Project, platform: RunningPlatform
) -> None:
    """No SQLite connector, hence no exporter, can be set on the platform's metadata database."""
    with pytest.raises(pio.ValidationError) as info:
        project.create_sql_connector("meta", driver="sqlite", database=str(platform.home / "platform.db"))
    assert info.value.code == "unsafe_path"
