"""SQL injection through table and database names: quoted as identifiers, never run as SQL.

Each hostile name is tried as a datasource table (checked at creation, then unchecked through a snapshot) and
as a database to list tables of; a table whose name really holds quotes and semicolons is snapshotted like any
other. Requests (the ``request`` datasources) are read-only: see test_sql_requests.py, where writes, disguised
writes and side-effecting SELECTs are refused by the statement check or the read-only session.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import PG_SCRAM_USER, SQLBackend, make_sql_backend

import previsio_sdk as pio

#: Names that would end the identifier and run a statement if they were pasted into SQL.
HOSTILE = [
    'x"; DROP TABLE {victim}; --',
    "x`; DROP TABLE {victim}; -- ",
    "x'; DROP TABLE {victim}; --",
    "x] ; DROP TABLE {victim}; --",
    "{victim} WHERE 1=0; DROP TABLE {victim}",
    "{victim}; DELETE FROM {victim}",
    "(SELECT 1) AS y; DROP TABLE {victim}; --",
]


def _victim(backend: SQLBackend, name: str) -> None:
    backend.exec(f"CREATE TABLE {name} (id integer)")
    backend.exec(f"INSERT INTO {name} VALUES (1), (2), (3)")
    if backend.driver == "postgresql":
        backend.exec(f"GRANT ALL ON {name} TO {PG_SCRAM_USER}")


def test_hostile_table_names_are_quoted_and_the_victim_survives(
    project: pio.Project, sql_backend: SQLBackend, unique_name: Callable[[str], str]
) -> None:
    """A table name holding SQL is looked up as one identifier: source_not_found, and nothing is dropped."""
    victim = unique_name("victim")
    _victim(sql_backend, victim)
    for i, pattern in enumerate(HOSTILE):
        name = pattern.format(victim=victim)
        with pytest.raises(pio.ValidationError) as info:
            project.create_datasource(sql_backend.connector, f"hostile-{i}", table=name)
        assert info.value.code in ("source_not_found", "invalid_source"), (name, info.value)
        source = project.create_datasource(sql_backend.connector, f"unchecked-{i}", table=name, check=False)
        with pytest.raises(pio.JobFailedError) as failed:
            project.create_dataset(f"hostile-{i}", datasource=source)
        assert failed.value.code in ("source_not_found", "invalid_source"), (name, failed.value)
    assert sorted(sql_backend.exec(f"SELECT id FROM {victim}")) == [(1,), (2,), (3,)]
    assert project.list_datasets() == []


@pytest.mark.parametrize("backend_driver", ["postgresql", "mysql"])
def test_hostile_database_names_are_not_run(
    project: pio.Project,
    request: pytest.FixtureRequest,
    unique_name: Callable[[str], str],
    backend_driver: str,
) -> None:
    """A database name holding SQL (listing tables, a datasource) is refused as a database, never run."""
    backend = make_sql_backend(request, project, backend_driver)
    victim = unique_name("victim")
    _victim(backend, victim)
    for pattern in HOSTILE:
        name = pattern.format(victim=victim)
        with pytest.raises(pio.ValidationError) as info:
            backend.connector.list_tables(name)
        assert info.value.code in ("source_not_found", "invalid_source", "authentication_failed"), info.value
        with pytest.raises(pio.ValidationError):
            project.create_datasource(backend.connector, "db", database=name, table=victim)
    assert sorted(backend.exec(f"SELECT id FROM {victim}")) == [(1,), (2,), (3,)]


def test_a_table_whose_name_holds_quotes_and_semicolons_is_snapshotted(
    project: pio.Project, sql_backend: SQLBackend, unique_name: Callable[[str], str]
) -> None:
    """A real table named with quotes, a semicolon and a comment marker snapshots its own rows."""
    base = unique_name("odd")
    name = f"{base}\"'; --"
    quoted = f"`{name}`" if sql_backend.driver == "mysql" else '"' + name.replace('"', '""') + '"'
    sql_backend.exec(f"CREATE TABLE {quoted} (id integer)")
    sql_backend.exec(f"INSERT INTO {quoted} VALUES (7), (8)")
    if sql_backend.driver == "postgresql":
        sql_backend.exec(f"GRANT ALL ON {quoted} TO {PG_SCRAM_USER}")
    source = project.create_datasource(sql_backend.connector, "odd", table=name)
    dataset = project.create_dataset("odd", datasource=source)
    assert sorted(dataset.to_pandas()["id"].tolist()) == [7, 8]
