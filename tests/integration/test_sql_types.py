"""Column types survive a snapshot: PostgreSQL, MariaDB and SQLite values come back with their Arrow types,
their pandas dtypes and their exact values, NULLs included.

Each database gets one table holding every type under test and three rows: ordinary values, NULL in every
column, and edge values. It is snapshotted once per module; the tests are parametrized by column.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pymysql
import pytest
from conftest import (
    MY_HOST,
    MY_PASSWORD,
    MY_PORT,
    MY_USER,
    PG_HOST,
    PG_PORT,
    PG_SCRAM_PASSWORD,
    PG_SCRAM_USER,
)

import previsio_sdk as pio

#: The dtype pandas gives an Arrow string column (``str`` from pandas 3, ``object`` before).
STR = str(pd.Series(["x"]).dtype)
UTC = timezone.utc


@dataclass(frozen=True)
class Case:
    """One column: its SQL type, the literals of rows 1 and 3 (row 2 is NULL), what must come back."""

    column: str
    sql_type: str
    literal_1: str
    literal_3: str
    arrow_type: str
    pandas_dtype: str
    value_1: Any
    value_3: Any

    def __str__(self) -> str:
        return self.column


@dataclass
class Snapshot:
    """A dataset taken from a types table, loaded once."""

    dataset: pio.Dataset
    table: pa.Table
    frame: pd.DataFrame


def _create_table(name: str, cases: list[Case]) -> list[str]:
    cols = ", ".join(f"{c.column} {c.sql_type}" for c in cases)
    row1 = ", ".join(c.literal_1 for c in cases)
    nulls = ", ".join("NULL" for _ in cases)
    row3 = ", ".join(c.literal_3 for c in cases)
    return [
        f"CREATE TABLE {name} (id integer, {cols})",
        f"INSERT INTO {name} VALUES (1, {row1}), (2, {nulls}), (3, {row3})",
    ]


def _snapshot(project: pio.Project, connector: pio.Connector, table: str) -> Snapshot:
    source = project.create_datasource(connector, connector.name, table=table)
    dataset = project.create_dataset(connector.name, datasource=source)
    arrow = dataset.to_arrow().sort_by("id")
    return Snapshot(dataset, arrow, pio.datasets.arrow_to_pandas(arrow))


@pytest.fixture(scope="module")
def module_project(client: pio.Client) -> Iterator[pio.Project]:
    """A project shared by the tests of this module."""
    proj = pio.Project.new(f"it-types-{uuid.uuid4().hex[:8]}", client=client)
    yield proj
    proj.delete()


def _check_schema(snap: Snapshot, case: Case) -> None:
    declared = {c.name: c.type for c in snap.dataset.schema}
    assert declared[case.column] == case.arrow_type
    assert str(snap.table.schema.field(case.column).type) == case.arrow_type


def _check_arrow_values(snap: Snapshot, case: Case) -> None:
    assert snap.table.column(case.column).to_pylist() == [case.value_1, None, case.value_3]


def _check_pandas(snap: Snapshot, case: Case) -> None:
    series = snap.frame[case.column]
    assert str(series.dtype) == case.pandas_dtype
    assert series.iloc[0] == case.value_1
    assert pd.isna(series.iloc[1])
    assert series.iloc[2] == case.value_3
    if case.pandas_dtype == "object":  # decimals and dates stay Python objects, not floats or Timestamps
        assert type(series.iloc[0]) is type(case.value_1)
        assert series.iloc[1] is None


# -- PostgreSQL ----------------------------------------------------------------------------------------------
PG_CASES = [
    Case("c_int", "integer", "7", "-2147483648", "int32", "Int32", 7, -2147483648),
    Case(
        "c_bigint",
        "bigint",
        "9007199254740993",
        "9223372036854775807",
        "int64",
        "Int64",
        9007199254740993,
        9223372036854775807,
    ),
    Case("c_smallint", "smallint", "-7", "32767", "int16", "Int16", -7, 32767),
    Case(
        "c_double",
        "double precision",
        "0.1",
        "-1.7976931348623157e308",
        "double",
        "float64",
        0.1,
        -1.7976931348623157e308,
    ),
    Case("c_real", "real", "2.25", "-0.5", "float", "float32", 2.25, -0.5),
    Case(
        "c_numeric",
        "numeric(12,3)",
        "123456789.125",
        "-0.001",
        "decimal128(12, 3)",
        "object",
        Decimal("123456789.125"),
        Decimal("-0.001"),
    ),
    Case("c_text", "text", "'héllo wörld ✓'", "''", "string", STR, "héllo wörld ✓", ""),
    Case("c_varchar", "varchar(20)", "'v'", "'xxxxxxxxxxxxxxxxxxxx'", "string", STR, "v", "x" * 20),
    Case("c_bool", "boolean", "true", "false", "bool", "boolean", True, False),
    Case(
        "c_ts",
        "timestamp",
        "'2024-02-29 12:34:56.789012'",
        "'1970-01-01 00:00:00'",
        "timestamp[us]",
        "datetime64[us]",
        datetime(2024, 2, 29, 12, 34, 56, 789012),
        datetime(1970, 1, 1),
    ),
    Case(
        "c_tstz",
        "timestamptz",
        "'2024-02-29 12:34:56.789012+02'",
        "'1999-12-31 23:59:59-05'",
        "timestamp[us, tz=UTC]",
        "datetime64[us, UTC]",
        datetime(2024, 2, 29, 10, 34, 56, 789012, tzinfo=UTC),
        datetime(2000, 1, 1, 4, 59, 59, tzinfo=UTC),
    ),
    Case(
        "c_date",
        "date",
        "'2024-02-29'",
        "'0001-01-01'",
        "date32[day]",
        "object",
        date(2024, 2, 29),
        date(1, 1, 1),
    ),
    Case(
        "c_uuid",
        "uuid",
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        "'00000000-0000-0000-0000-000000000000'",
        "string",
        STR,
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "00000000-0000-0000-0000-000000000000",
    ),
]
#: JSON comes back as JSON text; compared once parsed, since key spacing is the database's choice.
PG_JSON = Case(
    "c_jsonb",
    "jsonb",
    """'{"a": [1, 2.5], "b": null, "é": "✓"}'""",
    """'"just a string"'""",
    "string",
    STR,
    {"a": [1, 2.5], "b": None, "é": "✓"},
    "just a string",
)


@pytest.fixture(scope="module")
def pg_types(module_project: pio.Project, pg_database: str) -> Snapshot:
    """The PostgreSQL types table, snapshotted through the scram role."""
    table = f"types_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user="postgres", dbname=pg_database, autocommit=True
    ) as c:
        for stmt in _create_table(table, [*PG_CASES, PG_JSON]):
            c.execute(stmt)
    connector = module_project.create_sql_connector(
        "pg-types",
        host=PG_HOST,
        port=PG_PORT,
        username=PG_SCRAM_USER,
        password=PG_SCRAM_PASSWORD,
        database=pg_database,
    )
    return _snapshot(module_project, connector, table)


@pytest.mark.parametrize("case", PG_CASES, ids=str)
def test_postgres_column_keeps_its_arrow_type(pg_types: Snapshot, case: Case) -> None:
    """A PostgreSQL column gets the Arrow type of its SQL type, in the dataset's schema and Parquet file."""
    _check_schema(pg_types, case)


@pytest.mark.parametrize("case", PG_CASES, ids=str)
def test_postgres_column_keeps_its_values_and_nulls(pg_types: Snapshot, case: Case) -> None:
    """A PostgreSQL column's values come back exactly from to_arrow(), NULL as None."""
    _check_arrow_values(pg_types, case)


@pytest.mark.parametrize("case", PG_CASES, ids=str)
def test_postgres_column_loads_in_pandas_with_a_faithful_dtype(pg_types: Snapshot, case: Case) -> None:
    """to_pandas() gives a PostgreSQL column a dtype keeping its values (nullable ints), NULL as missing."""
    _check_pandas(pg_types, case)


def test_postgres_jsonb_comes_back_as_json_text(pg_types: Snapshot) -> None:
    """A jsonb column becomes a string column whose every value is the JSON text of the stored value."""
    _check_schema(pg_types, PG_JSON)
    values = pg_types.table.column(PG_JSON.column).to_pylist()
    assert values[1] is None
    assert [json.loads(values[0]), json.loads(values[2])] == [PG_JSON.value_1, PG_JSON.value_3]
    assert str(pg_types.frame[PG_JSON.column].dtype) == STR


def test_postgres_snapshot_keeps_rows_and_column_order(pg_types: Snapshot) -> None:
    """The snapshot holds the table's three rows and its columns in table order."""
    assert pg_types.dataset.num_rows == 3
    assert pg_types.dataset.columns == ["id", *(c.column for c in PG_CASES), PG_JSON.column]
    assert list(pg_types.frame.columns) == pg_types.dataset.columns


# -- MariaDB -------------------------------------------------------------------------------------------------
#: 2024-02-29 10:34:56.789012 UTC, written as an instant so the server's time zone does not matter.
_INSTANT = "FROM_UNIXTIME(1709202896.789012)"

MY_CASES = [
    Case("c_tiny", "tinyint", "-128", "127", "int8", "Int8", -128, 127),
    Case("c_int", "int", "2147483647", "-2147483648", "int32", "Int32", 2147483647, -2147483648),
    Case(
        "c_big",
        "bigint",
        "-9223372036854775808",
        "9007199254740993",
        "int64",
        "Int64",
        -9223372036854775808,
        9007199254740993,
    ),
    Case("c_ubig", "bigint unsigned", "18446744073709551615", "0", "uint64", "UInt64", 2**64 - 1, 0),
    Case(
        "c_dec",
        "decimal(10,2)",
        "12345678.91",
        "-0.01",
        "decimal128(10, 2)",
        "object",
        Decimal("12345678.91"),
        Decimal("-0.01"),
    ),
    Case(
        "c_double",
        "double",
        "0.1",
        "-1.7976931348623157e308",
        "double",
        "float64",
        0.1,
        -1.7976931348623157e308,
    ),
    Case("c_float", "float", "2.25", "-0.5", "float", "float32", 2.25, -0.5),
    Case("c_varchar", "varchar(20)", "'héllo ✓'", "''", "string", STR, "héllo ✓", ""),
    Case("c_text", "text", "'long text'", "REPEAT('x', 5000)", "string", STR, "long text", "x" * 5000),
    Case(
        "c_dt",
        "datetime(6)",
        "'2024-02-29 12:34:56.789012'",
        "'1000-01-01 00:00:00'",
        "timestamp[us]",
        "datetime64[us]",
        datetime(2024, 2, 29, 12, 34, 56, 789012),
        datetime(1000, 1, 1),
    ),
    Case(
        "c_ts",
        "timestamp(6) NULL",
        _INSTANT,
        "FROM_UNIXTIME(86400)",
        "timestamp[us, tz=UTC]",
        "datetime64[us, UTC]",
        datetime(2024, 2, 29, 10, 34, 56, 789012, tzinfo=UTC),
        datetime(1970, 1, 2, tzinfo=UTC),
    ),
    Case(
        "c_date",
        "date",
        "'2024-02-29'",
        "'1000-01-01'",
        "date32[day]",
        "object",
        date(2024, 2, 29),
        date(1000, 1, 1),
    ),
    Case(
        "c_json",
        "json",
        """'{"a": [1, 2.5], "b": null}'""",
        """'"just a string"'""",
        "string",
        STR,
        '{"a": [1, 2.5], "b": null}',
        '"just a string"',
    ),
]


@pytest.fixture(scope="module")
def my_types(module_project: pio.Project, my_database: str) -> Snapshot:
    """The MariaDB types table, snapshotted through the password user."""
    table = f"types_{uuid.uuid4().hex[:8]}"
    con = pymysql.connect(
        host=MY_HOST, port=MY_PORT, user="root", password="", database=my_database, autocommit=True
    )
    try:
        with con.cursor() as cur:
            for stmt in _create_table(table, MY_CASES):
                cur.execute(stmt)
    finally:
        con.close()
    connector = module_project.create_sql_connector(
        "maria-types",
        host=MY_HOST,
        port=MY_PORT,
        username=MY_USER,
        password=MY_PASSWORD,
        database=my_database,
    )
    return _snapshot(module_project, connector, table)


@pytest.mark.parametrize("case", MY_CASES, ids=str)
def test_mariadb_column_keeps_its_arrow_type(my_types: Snapshot, case: Case) -> None:
    """A MariaDB column gets the Arrow type of its SQL type (unsigned stays unsigned, TIMESTAMP is UTC)."""
    _check_schema(my_types, case)


@pytest.mark.parametrize("case", MY_CASES, ids=str)
def test_mariadb_column_keeps_its_values_and_nulls(my_types: Snapshot, case: Case) -> None:
    """A MariaDB column's values come back exactly from to_arrow(), NULL as None."""
    _check_arrow_values(my_types, case)


@pytest.mark.parametrize("case", MY_CASES, ids=str)
def test_mariadb_column_loads_in_pandas_with_a_faithful_dtype(my_types: Snapshot, case: Case) -> None:
    """to_pandas() gives a MariaDB column a dtype keeping its values (2**64-1 included), NULL as missing."""
    _check_pandas(my_types, case)


# -- SQLite --------------------------------------------------------------------------------------------------
SQLITE_CASES = [
    Case(
        "c_int",
        "INTEGER",
        "-9223372036854775808",
        "9007199254740993",
        "int64",
        "Int64",
        -9223372036854775808,
        9007199254740993,
    ),
    Case("c_real", "REAL", "0.1", "-1.5e300", "double", "float64", 0.1, -1.5e300),
    Case("c_text", "TEXT", "'héllo ✓'", "''", "string", STR, "héllo ✓", ""),
    Case(
        "c_date",
        "DATE",
        "'2024-02-29'",
        "'1999-12-31'",
        "date32[day]",
        "object",
        date(2024, 2, 29),
        date(1999, 12, 31),
    ),
    Case(
        "c_ts",
        "TIMESTAMP",
        "'2024-02-29 12:34:56.789012'",
        "'1970-01-01 00:00:00'",
        "timestamp[us]",
        "datetime64[us]",
        datetime(2024, 2, 29, 12, 34, 56, 789012),
        datetime(1970, 1, 1),
    ),
    Case("c_bool", "BOOLEAN", "1", "0", "bool", "boolean", True, False),
]


@pytest.fixture(scope="module")
def sqlite_types(module_project: pio.Project, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """An SQLite file written with the sqlite3 module, snapshotted."""
    path: Path = tmp_path_factory.mktemp("sqlite-types") / "types.db"
    con = sqlite3.connect(path)
    with con:
        for stmt in _create_table("types", SQLITE_CASES):
            con.execute(stmt)
    con.close()
    connector = module_project.create_sql_connector("lite-types", driver="sqlite", database=str(path))
    return _snapshot(module_project, connector, "types")


@pytest.mark.parametrize("case", SQLITE_CASES, ids=str)
def test_sqlite_column_gets_the_arrow_type_of_its_declared_type(sqlite_types: Snapshot, case: Case) -> None:
    """An SQLite column gets the Arrow type of its declared type (DATE, TIMESTAMP, BOOLEAN included)."""
    _check_schema(sqlite_types, case)


@pytest.mark.parametrize("case", SQLITE_CASES, ids=str)
def test_sqlite_column_keeps_its_values_and_nulls(sqlite_types: Snapshot, case: Case) -> None:
    """An SQLite column's values come back exactly from to_arrow() and to_pandas(), NULL as missing."""
    _check_arrow_values(sqlite_types, case)
    _check_pandas(sqlite_types, case)
