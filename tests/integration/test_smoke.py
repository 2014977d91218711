"""A first end-to-end path: PostgreSQL table to dataset to DataFrame."""

import previsio_sdk as pio


def test_snapshot_of_a_postgres_table_loads_as_a_dataframe(project: pio.Project, pg_connector, pg_exec):
    """A PostgreSQL table snapshotted through the platform comes back with its rows."""
    pg_exec("CREATE TABLE smoke (id int PRIMARY KEY, label text)")
    pg_exec("INSERT INTO smoke SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
    ds = project.create_datasource(pg_connector, "smoke", table="smoke")
    dataset = project.create_dataset("smoke", datasource=ds)
    assert dataset.num_rows == 1000
    df = dataset.to_pandas()
    assert list(df.columns) == ["id", "label"]
    assert df["id"].sum() == 500500
