"""SQL connectors: testing a connection, and browsing databases and tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
    RunningPlatform,
    SQLBackend,
)

import previsio_sdk as pio

WRONG_PASSWORD = "Wrong-pass-7731-zz"
SECRETS = (WRONG_PASSWORD, PG_SCRAM_PASSWORD, MY_PASSWORD)


def _assert_no_secret(*texts: str | None) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in (text or ""), f"a password shows in {text!r}"


def test_good_credentials_pass_the_test(sql_backend: SQLBackend) -> None:
    """connector.test() is truthy with good credentials on PostgreSQL, MariaDB and SQLite, no secret shown."""
    result = sql_backend.connector.test()
    assert result, result.message
    assert result.ok is True and result.code is None
    _assert_no_secret(result.message, repr(result), repr(sql_backend.connector))


#: driver -> (host, port, user, good password, database fixture)
SERVERS = {
    "postgresql": (PG_HOST, PG_PORT, PG_SCRAM_USER, PG_SCRAM_PASSWORD, "pg_database"),
    "mysql": (MY_HOST, MY_PORT, MY_USER, MY_PASSWORD, "my_database"),
}


@pytest.mark.parametrize("driver", sorted(SERVERS))
def test_wrong_password_fails_the_test_with_authentication_failed(
    project: pio.Project, request: pytest.FixtureRequest, platform: RunningPlatform, driver: str
) -> None:
    """A wrong password tests falsy with code authentication_failed, and no password shows in any message."""
    host, port, user, _good, db_fixture = SERVERS[driver]
    connector = project.create_sql_connector(
        "wrong",
        host=host,
        port=port,
        username=user,
        password=WRONG_PASSWORD,
        driver=driver,
        database=request.getfixturevalue(db_fixture),
    )
    result = connector.test()
    assert not result
    assert result.code == "authentication_failed", result
    assert result.message
    _assert_no_secret(result.message, repr(result), repr(connector))
    with pytest.raises(pio.ValidationError) as info:
        connector.list_databases()
    assert info.value.code == "authentication_failed"
    _assert_no_secret(str(info.value), repr(info.value), repr(info.value.details))
    _assert_no_secret(platform.log_text())


@pytest.mark.parametrize("driver", sorted(SERVERS))
def test_wrong_password_fails_datasource_creation_and_snapshot(
    project: pio.Project, request: pytest.FixtureRequest, driver: str
) -> None:
    """With a wrong password, creating a datasource is refused and a snapshot fails: authentication_failed."""
    host, port, user, _good, db_fixture = SERVERS[driver]
    connector = project.create_sql_connector(
        "wrong",
        host=host,
        port=port,
        username=user,
        password=WRONG_PASSWORD,
        driver=driver,
        database=request.getfixturevalue(db_fixture),
    )
    with pytest.raises(pio.ValidationError) as checked:
        project.create_datasource(connector, "t", table="anything")
    assert checked.value.code == "authentication_failed"
    source = project.create_datasource(connector, "t", table="anything", check=False)
    with pytest.raises(pio.JobFailedError) as failed:
        project.create_dataset("t", datasource=source)
    assert failed.value.code == "authentication_failed"
    _assert_no_secret(str(checked.value), str(failed.value))
    assert project.list_datasets() == []


@pytest.mark.parametrize("driver", sorted(SERVERS))
def test_closed_port_fails_the_test_with_connection_failed(
    project: pio.Project, closed_port: int, driver: str
) -> None:
    """A port nobody listens on tests falsy with code connection_failed, and the message holds no secret."""
    _host, _port, user, good, _db = SERVERS[driver]
    connector = project.create_sql_connector(
        "closed",
        host="127.0.0.1",
        port=closed_port,
        username=user,
        password=good,
        driver=driver,
        database="x",
    )
    result = connector.test()
    assert not result
    assert result.code == "connection_failed", result
    _assert_no_secret(result.message)


def test_missing_sqlite_file_fails_the_test(project: pio.Project, tmp_path: Path) -> None:
    """An SQLite connector to a missing file tests falsy, and testing it does not create the file."""
    missing = tmp_path / "nowhere" / "missing.db"
    connector = project.create_sql_connector("lite", driver="sqlite", database=str(missing))
    result = connector.test()
    assert not result
    assert result.code is not None and result.message
    assert not missing.exists()
    assert not missing.parent.exists()


# -- browsing ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", sorted(SERVERS))
def test_list_databases_shows_the_session_database(
    project: pio.Project, request: pytest.FixtureRequest, driver: str
) -> None:
    """list_databases() lists the database the connector's user can read, and no system schema."""
    connector = request.getfixturevalue("pg_connector" if driver == "postgresql" else "my_connector")
    names = connector.list_databases()
    assert request.getfixturevalue(SERVERS[driver][4]) in names
    assert all(isinstance(n, str) for n in names)
    assert not {"information_schema", "performance_schema", "mysql", "template0"} & set(names)


def test_list_tables_shows_created_tables_and_views(
    sql_backend: SQLBackend, unique_name: Callable[[str], str]
) -> None:
    """list_tables() of the connector's database lists a table and a view just created, sorted."""
    table, view = unique_name("listed"), unique_name("listed_v")
    sql_backend.exec(f"CREATE TABLE {table} (id integer)")
    sql_backend.exec(f"CREATE VIEW {view} AS SELECT id FROM {table}")
    names = sql_backend.connector.list_tables()
    assert {table, view} <= set(names)
    assert names == sorted(names)
    if sql_backend.driver != "sqlite":
        assert sql_backend.connector.database is not None
        assert {table, view} <= set(sql_backend.connector.list_tables(sql_backend.connector.database))


def test_postgres_tables_outside_public_are_listed_and_snapshotted_as_schema_dot_table(
    project: pio.Project,
    pg_connector: pio.SQLConnector,
    pg_exec: Callable[..., list],
    pg_database: str,
    unique_name: Callable[[str], str],
) -> None:
    """A PostgreSQL table outside "public" is listed as "schema.table"; a datasource on that name works."""
    schema = unique_name("myschema")
    pg_exec(f"CREATE SCHEMA {schema}")
    pg_exec(f"CREATE TABLE {schema}.mytable (id bigint, name text)")
    pg_exec(f"CREATE TABLE public.mytable_{schema} (other integer)")
    pg_exec(f"INSERT INTO {schema}.mytable VALUES (1, 'one'), (2, 'two')")
    pg_exec(f"GRANT USAGE ON SCHEMA {schema} TO {PG_SCRAM_USER}")
    pg_exec(f"GRANT SELECT ON {schema}.mytable TO {PG_SCRAM_USER}")
    names = pg_connector.list_tables(pg_database)
    assert f"{schema}.mytable" in names
    assert f"mytable_{schema}" in names  # public tables keep their bare name
    source = project.create_datasource(pg_connector, "schema-table", table=f"{schema}.mytable")
    assert source.table == f"{schema}.mytable"
    dataset = project.create_dataset("schema-table", datasource=source)
    assert dataset.num_rows == 2
    assert [(c.name, c.type) for c in dataset.schema] == [("id", "int64"), ("name", "string")]
    assert dataset.to_arrow().to_pylist() == [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]


def test_mariadb_datasource_naming_its_database_snapshots(
    project: pio.Project,
    my_connector: pio.SQLConnector,
    my_exec: Callable[..., list],
    my_database: str,
    unique_name: Callable[[str], str],
) -> None:
    """create_datasource(database=..., table=...) reads the table of the database named, on MariaDB."""
    table = unique_name("elsewhere")
    my_exec(f"CREATE TABLE {table} (id integer)")
    my_exec(f"INSERT INTO {table} VALUES (1), (2), (3)")
    source = project.create_datasource(my_connector, "db-table", database=my_database, table=table)
    assert source.database == my_database
    assert project.create_dataset("db-table", datasource=source).num_rows == 3
