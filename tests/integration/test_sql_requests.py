"""Request datasources: a read-only query is snapshotted; anything that would change the database is refused.

The write tests give the connector's user every privilege on what the query touches, so that only the
platform's own guards (the statement check, then the read-only session) stand between the query and the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from conftest import MY_USER, PG_SCRAM_USER, SQLBackend, make_sql_backend

import previsio_sdk as pio


def _orders(backend: SQLBackend, name: str) -> None:
    """A small orders table, readable and writable by the connector's user."""
    money = "REAL" if backend.driver == "sqlite" else "decimal(10,2)"
    backend.exec(f"CREATE TABLE {name} (id integer, amount {money}, label varchar(20))")
    backend.exec(
        f"INSERT INTO {name} VALUES (1, 50.25, 'small'), (2, 150.5, 'medium'), (3, 999.99, 'large'), "
        f"(4, NULL, 'unknown')"
    )
    if backend.driver == "postgresql":
        backend.exec(f"GRANT ALL ON {name} TO {PG_SCRAM_USER}")


def _rows(backend: SQLBackend, name: str) -> list[tuple]:  # type: ignore[type-arg]
    return sorted(backend.exec(f"SELECT id, label FROM {name}"))


#: Arrow types of (id, amount, label) from a query: SQLite types query columns from their values.
REQUEST_TYPES = {
    "postgresql": ["int32", "decimal128(10, 2)", "string"],
    "mysql": ["int32", "decimal128(10, 2)", "string"],
    "sqlite": ["int64", "double", "string"],
}


def test_request_snapshots_only_the_matching_rows_with_their_types(
    project: pio.Project, sql_backend: SQLBackend, unique_name: Callable[[str], str]
) -> None:
    """A request datasource snapshots exactly the rows its WHERE clause selects, with the columns' types."""
    table = unique_name("orders")
    _orders(sql_backend, table)
    source = project.create_datasource(
        sql_backend.connector,
        "big",
        request=f"SELECT id, amount, label FROM {table} WHERE amount > 100 ORDER BY id",
    )
    assert source.request is not None and source.table is None
    dataset = project.create_dataset("big", datasource=source)
    assert dataset.num_rows == 2
    assert [c.type for c in dataset.schema] == REQUEST_TYPES[sql_backend.driver]
    rows = dataset.to_arrow().to_pylist()
    assert [r["id"] for r in rows] == [2, 3]
    assert [r["label"] for r in rows] == ["medium", "large"]
    if sql_backend.driver == "sqlite":
        assert [r["amount"] for r in rows] == [150.5, 999.99]
    else:
        assert [r["amount"] for r in rows] == [Decimal("150.50"), Decimal("999.99")]


@pytest.mark.parametrize(
    "request_text",
    [
        pytest.param("SELECT id, label FROM {t} WHERE id <= 2;", id="trailing-semicolon"),
        pytest.param(
            "  \n  SELECT id, label FROM {t} WHERE id <= 2 -- the first two\n", id="surrounding-blanks"
        ),
        pytest.param("SELECT id, label FROM {t} WHERE id <= 2 -- the first two", id="final-line-comment"),
        pytest.param(
            "/* the first two */ SELECT id, label FROM {t} WHERE id <= 2", id="leading-block-comment"
        ),
        pytest.param(
            "WITH firsts AS (SELECT * FROM {t} WHERE id <= 2) SELECT id, label FROM firsts", id="cte"
        ),
        pytest.param(
            "SELECT id, label FROM {t} WHERE id <= 2 AND label LIKE '%' AND label <> ':x %s %%'",
            id="percent-and-colon-literals",
        ),
    ],
)
def test_request_written_the_way_people_write_sql_is_accepted(
    project: pio.Project, sql_backend: SQLBackend, unique_name: Callable[[str], str], request_text: str
) -> None:
    """A read-only request with a final semicolon, comments or a CTE is checked and snapshotted normally."""
    table = unique_name("orders")
    _orders(sql_backend, table)
    source = project.create_datasource(sql_backend.connector, "q", request=request_text.format(t=table))
    dataset = project.create_dataset("q", datasource=source)
    assert sorted(r["id"] for r in dataset.to_arrow().to_pylist()) == [1, 2]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM {t}",
        "delete from {t} where id = 1",
        "  INSERT INTO {t} VALUES (9, 1, 'x')",
        "UPDATE {t} SET label = 'changed'",
        "DROP TABLE {t}",
        "TRUNCATE {t}",
        "ALTER TABLE {t} ADD COLUMN extra integer",
        "CREATE TABLE {t}_copy AS SELECT * FROM {t}",
    ],
)
def test_write_statement_is_refused_and_the_table_is_unchanged(
    project: pio.Project, sql_backend: SQLBackend, unique_name: Callable[[str], str], statement: str
) -> None:
    """A write statement as request is refused, ValidationError(invalid_source); the table keeps its rows."""
    table = unique_name("orders")
    _orders(sql_backend, table)
    before = _rows(sql_backend, table)
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(sql_backend.connector, "w", request=statement.format(t=table))
    assert info.value.code == "invalid_source"
    assert _rows(sql_backend, table) == before
    assert project.list_datasource() == []


@dataclass(frozen=True)
class Disguised:
    """A write disguised as a query: the statement parser refuses it, even unchecked (check=False)."""

    driver: str
    request: str


DISGUISED = [
    Disguised("postgresql", "/* comment first */ DELETE FROM {t}"),
    Disguised("postgresql", "WITH gone AS (DELETE FROM {t} RETURNING *) SELECT * FROM gone"),
    Disguised("postgresql", "SELECT * FROM {t} FOR UPDATE"),
    Disguised("postgresql", "SELECT 1 AS x; DELETE FROM {t}"),
    Disguised("mysql", "SELECT * FROM {t} FOR UPDATE"),
    Disguised("mysql", "/* comment first */ DELETE FROM {t}"),
    Disguised("mysql", "/* comment first */ DROP TABLE {t}"),
    Disguised("mysql", "WITH x AS (SELECT 1) DELETE FROM {t}"),
    Disguised("mysql", "SELECT 1 AS x; DELETE FROM {t}"),
    Disguised("sqlite", "/* comment first */ DELETE FROM {t}"),
    Disguised("sqlite", "-- comment first\nDROP TABLE {t}"),
]


@pytest.mark.parametrize("case", DISGUISED, ids=lambda c: f"{c.driver}:{c.request[:40]}")
def test_disguised_write_is_refused_even_unchecked_and_changes_nothing(
    project: pio.Project, request: pytest.FixtureRequest, unique_name: Callable[[str], str], case: Disguised
) -> None:
    """A write hidden behind a comment, a CTE, FOR UPDATE or a second statement is a 422 invalid_source at
    creation, check=False included (the statement is parsed, not sent); nothing changes."""
    backend = make_sql_backend(request, project, case.driver)
    table = unique_name("orders")
    _orders(backend, table)
    before = _rows(backend, table)
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(backend.connector, "w", request=case.request.format(t=table), check=False)
    assert info.value.code == "invalid_source"
    assert _rows(backend, table) == before
    assert project.list_datasource() == []


SEQUENCES = {
    # driver: (create, grant to the connector's user, the request, how far the sequence went)
    "postgresql": (
        "CREATE SEQUENCE {s}",
        f"GRANT ALL ON SEQUENCE {{s}} TO {PG_SCRAM_USER}",
        "SELECT nextval('{s}') AS v",
        "SELECT last_value, is_called FROM {s}",
    ),
    "mysql": (
        "CREATE SEQUENCE {s} NOCACHE",
        f"GRANT ALL ON {{s}} TO '{MY_USER}'@'%'",
        "SELECT NEXTVAL({s}) AS v",
        "SELECT next_not_cached_value FROM {s}",
    ),
}


@pytest.mark.parametrize("driver", sorted(SEQUENCES))
@pytest.mark.parametrize("check", [True, False], ids=["checked", "unchecked"])
def test_sequence_is_not_advanced_by_a_select(
    project: pio.Project,
    request: pytest.FixtureRequest,
    unique_name: Callable[[str], str],
    driver: str,
    check: bool,
) -> None:
    """SELECT nextval() (no rollback undoes it) is refused by the statement check: the sequence stays."""
    backend = make_sql_backend(request, project, driver)
    create, grant, select, state = SEQUENCES[driver]
    seq = unique_name("seq")
    backend.exec(create.format(s=seq))
    if driver == "postgresql":
        backend.exec(grant.format(s=seq))
    before = backend.exec(state.format(s=seq))
    error: pio.PrevisioError | None = None
    try:
        source = project.create_datasource(
            backend.connector, "seq", request=select.format(s=seq), check=check
        )
        project.create_dataset("seq", datasource=source)
    except (pio.ValidationError, pio.JobFailedError) as exc:
        error = exc
    assert error is not None, "the snapshot of SELECT nextval() succeeded"
    assert error.code == "invalid_source"
    assert "nextval" in error.message.lower(), error.message
    assert backend.exec(state.format(s=seq)) == before
    assert project.list_datasets() == []
