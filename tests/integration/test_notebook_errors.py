"""Errors a person can act on, and the data features a notebook uses, against the real platform."""

from __future__ import annotations

import pandas as pd
import pyarrow.compute as pc
import pytest
from conftest import PG_HOST, PG_PORT

import previsio_sdk as pio


def test_a_missing_table_suggests_close_names(sql_backend) -> None:  # type: ignore[no-untyped-def]
    """Creating a datasource on a misspelt table fails with source_not_found and 'did you mean'."""
    sql_backend.exec("CREATE TABLE sales (id INTEGER)")
    project = pio.Project.from_id(sql_backend.connector.project_id, client=sql_backend.connector.client)
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(sql_backend.connector, "s", table="sale")
    assert info.value.code == "source_not_found"
    assert "Did you mean 'sales'" in info.value.message  # other tables of the database may follow


def test_an_unknown_postgresql_user_is_authentication_failed(project: pio.Project, pg_database: str) -> None:
    """A login as a role that does not exist is authentication_failed (as the guide says), not not-found."""
    connector = project.create_sql_connector(
        "ghost", host=PG_HOST, port=PG_PORT, username="no_such_role_4711", password="x", database=pg_database
    )
    result = connector.test()
    assert (result.ok, result.code) == (False, "authentication_failed"), result.message


def test_the_snapshot_total_comes_from_the_catalog(pg_connector: pio.SQLConnector, pg_exec) -> None:  # type: ignore[no-untyped-def]
    """A table datasource's estimate is PostgreSQL's reltuples; a query has none."""
    pg_exec("DROP TABLE IF EXISTS est")
    pg_exec("CREATE TABLE est AS SELECT g AS id FROM generate_series(1, 5000) g")
    pg_exec("ANALYZE est")
    project = pio.Project.from_id(pg_connector.project_id, client=pg_connector.client)
    table = project.create_datasource(pg_connector, "est", table="est")
    query = project.create_datasource(pg_connector, "q", request="SELECT 1 AS one")
    assert project._estimate_rows(table.id) == 5000
    assert project._estimate_rows(query.id) is None


def test_columns_and_filters_load_the_same_rows_locally_and_remotely(project: pio.Project) -> None:
    """to_pandas/to_arrow with columns and filters give the same answer from the shared file and over HTTP."""
    frame = pd.DataFrame(
        {"id": range(1000), "country": ["FR", "DE"] * 500, "amount": [float(i) for i in range(1000)]}
    )
    dataset = project.create_dataset("pushdown", dataframe=frame, progress=False)
    client = project.client
    results = []
    for shares in (True, False):
        client.may_share_files = shares
        try:
            tuples = dataset.to_pandas(
                columns=["id", "amount"], filters=[("country", "=", "FR"), ("id", "<", 100)]
            )
            expr = dataset.to_arrow(filters=pc.field("amount") >= 990.0)
            results.append((tuples, expr.num_rows))
        finally:
            client.may_share_files = True
    for tuples, n in results:
        assert list(tuples.columns) == ["id", "amount"]
        assert list(tuples["id"]) == list(range(0, 100, 2))
        assert n == 10
    import polars as pl

    assert isinstance(dataset.to_polars(columns=["id"]), pl.DataFrame)


def test_duckdb_queries_a_dataset(project: pio.Project) -> None:
    """dataset.duckdb() is a DuckDB relation over the dataset: SQL runs on it without a private path."""
    import duckdb

    frame = pd.DataFrame({"country": ["FR", "DE", "FR"], "amount": [1.0, 2.0, 3.0]})
    dataset = project.create_dataset("duck", dataframe=frame, progress=False)
    con = duckdb.connect()
    relation = dataset.duckdb(con)
    totals = dict(relation.aggregate("country, sum(amount) AS total").fetchall())
    assert totals == {"FR": 4.0, "DE": 2.0}
    assert dataset.local_path() is not None  # the test platform is on this machine and shares its files
    by_path = con.sql(f"SELECT count(*) FROM read_parquet('{dataset.local_path()}')").fetchall()[0]
    assert by_path == (3,)
    con.register("stream", dataset.to_arrow_stream(columns=["amount"]))
    assert con.sql("SELECT sum(amount) FROM stream").fetchall()[0] == (6.0,)
