"""File formats snapshotted into datasets: CSV dialects, Parquet, JSON lines, gzip, zip, globs and types."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from fileservers import FILE_TYPES, FileServers, make_connector, session_file_servers, source_kwargs

import previsio_sdk as pio

ORDERS_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("customer", pa.string()),
        ("amount", pa.float64()),
        ("paid", pa.bool_()),
        ("ordered_at", pa.timestamp("us")),
    ]
)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> FileServers:
    """The session's file servers."""
    return session_file_servers(tmp_path_factory.getbasetemp())


@pytest.fixture
def local(project: pio.Project, servers: FileServers) -> pio.FileConnector:
    """A local connector to the test files."""
    return make_connector(project, "local", servers)


def snapshot(project: pio.Project, connector: pio.Connector, path: str, **kwargs) -> pa.Table:  # type: ignore[no-untyped-def]
    """Create a datasource on ``path`` and snapshot it; return the dataset's content."""
    name = f"{connector.type}-{path}-{len(kwargs)}"
    source = project.create_datasource(connector, name, path=path, **kwargs)
    return project.create_dataset(name, datasource=source).to_arrow()


# -- CSV -----------------------------------------------------------------------------------------------------
def test_csv_types_are_inferred(project: pio.Project, local: pio.FileConnector) -> None:
    """A CSV's columns come out as integers, floats, booleans, timestamps and strings, not all text."""
    table = snapshot(project, local, "orders.csv")
    assert table.schema == ORDERS_SCHEMA
    assert table.column("ordered_at")[0].as_py() == dt.datetime(2024, 1, 2, 10, 0)
    assert table.column("paid").to_pylist() == [True, False, True, False]


def test_french_csv_is_detected(project: pio.Project, local: pio.FileConnector) -> None:
    """Semicolons, Latin-1, decimal commas and a missing header are detected when no option says so."""
    table = snapshot(project, local, "formats/latin1.csv")
    assert table.schema == pa.schema(
        [
            ("column_1", pa.int64()),
            ("column_2", pa.string()),
            ("column_3", pa.float64()),
            ("column_4", pa.date32()),
        ]
    )
    assert table.column("column_2").to_pylist() == ["Hélène", "Zoë", "Émile"]
    assert table.column("column_3").to_pylist() == [3.5, 10.25, 0.75]


def test_csv_options_given_explicitly(project: pio.Project, local: pio.FileConnector) -> None:
    """delimiter=, encoding=, header= and decimal= read the file as told, and column names can be given."""
    table = snapshot(
        project,
        local,
        "formats/latin1.csv",
        delimiter=";",
        encoding="latin-1",
        header=False,
        decimal=",",
        options={"column_names": ["id", "name", "amount", "day"]},
    )
    assert table.column_names == ["id", "name", "amount", "day"]
    assert table.column("name").to_pylist() == ["Hélène", "Zoë", "Émile"]
    assert table.column("amount").to_pylist() == [3.5, 10.25, 0.75]


def test_explicit_options_override_detection(project: pio.Project, local: pio.FileConnector) -> None:
    """header=False reads the header line as a row; column_types forces a column's type."""
    table = snapshot(
        project, local, "orders.csv", header=False, options={"column_types": {"column_1": "string"}}
    )
    assert table.num_rows == 5
    assert table.column("column_1").to_pylist()[0] == "order_id"
    typed = snapshot(project, local, "orders.csv", options={"column_types": {"order_id": "string"}})
    assert typed.schema.field("order_id").type == pa.string()


def test_a_wrong_encoding_option_is_refused(project: pio.Project, local: pio.FileConnector) -> None:
    """An unknown encoding or option name is refused when the datasource is created."""
    with pytest.raises(pio.ValidationError):
        project.create_datasource(local, "bad-encoding", path="orders.csv", encoding="no-such-codec")
    with pytest.raises(pio.ValidationError):
        project.create_datasource(local, "bad-option", path="orders.csv", options={"delimeter": ";"})


def test_tsv(project: pio.Project, local: pio.FileConnector) -> None:
    """A .tsv file is read with tabs."""
    table = snapshot(project, local, "formats/tabs.tsv")
    assert table.to_pydict() == {"a": [1, 2], "b": ["x", "y"]}


def test_format_argument_reads_an_unknown_extension(project: pio.Project, local: pio.FileConnector) -> None:
    """A file whose name does not tell its format is refused, and read with format='csv'."""
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(local, "no-format", path="formats/export.data")
    assert info.value.code == "invalid_source"
    assert snapshot(project, local, "formats/export.data", format="csv").schema == ORDERS_SCHEMA


# -- other formats -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", FILE_TYPES)
def test_parquet(project: pio.Project, servers: FileServers, kind: str) -> None:
    """A Parquet file keeps its schema and values, through every connector type."""
    connector = make_connector(project, kind, servers)
    table = snapshot(project, connector, "formats/data.parquet", **source_kwargs(kind, servers))
    assert table.schema == pa.schema(
        [("id", pa.int64()), ("name", pa.string()), ("score", pa.float64()), ("at", pa.timestamp("us"))]
    )
    assert table.column("score").to_pylist() == [0.5, 1.5, None]


def test_json_lines(project: pio.Project, local: pio.FileConnector) -> None:
    """A JSON-lines file gives typed columns."""
    table = snapshot(project, local, "formats/events.jsonl")
    assert table.schema == pa.schema(
        [("id", pa.int64()), ("kind", pa.string()), ("value", pa.float64()), ("ok", pa.bool_())]
    )
    assert table.column("value").to_pylist() == [1.5, None, 2.0]


@pytest.mark.parametrize("kind", ("local", "http"))
def test_gzip_csv(project: pio.Project, servers: FileServers, kind: str) -> None:
    """A .csv.gz file is decompressed while read and gives the same table as the plain CSV."""
    connector = make_connector(project, kind, servers)
    table = snapshot(project, connector, "formats/orders.csv.gz")
    assert table.equals(snapshot(project, connector, "orders.csv"))


@pytest.mark.parametrize("kind", ("local", "http", "s3"))
def test_zip_csv(project: pio.Project, servers: FileServers, kind: str) -> None:
    """A zip holding a CSV gives the same table as the plain CSV (HTTP streams are spooled first)."""
    connector = make_connector(project, kind, servers)
    table = snapshot(project, connector, "formats/orders.zip", **source_kwargs(kind, servers))
    assert table.schema == ORDERS_SCHEMA
    assert table.column("customer").to_pylist() == ["Ada", "Bob", "Chloé", "Dan"]


def test_zip_with_several_members(project: pio.Project, local: pio.FileConnector) -> None:
    """The CSV members of a zip are read as one dataset (columns matched by name); member= picks some."""
    table = snapshot(project, local, "formats/nested.zip")
    assert table.to_pydict() == {"id": [1, 2], "value": [10, 20]}
    only_a = snapshot(project, local, "formats/nested.zip", options={"member": "2024/a.csv"})
    assert only_a.to_pydict() == {"id": [1], "value": [10]}


# -- globs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", FILE_TYPES)
def test_glob_reads_matching_files_as_one_dataset(
    project: pio.Project, servers: FileServers, kind: str
) -> None:
    """A glob over three monthly CSV files gives one dataset with their rows in file-name order."""
    connector = make_connector(project, kind, servers)
    table = snapshot(project, connector, "monthly/2024-*.csv", **source_kwargs(kind, servers))
    assert table.schema == pa.schema([("id", pa.int64()), ("value", pa.int64())])
    assert table.column("id").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert table.column("value").to_pylist() == [10, 20, 30, 40, 50, 60]


def test_glob_with_a_file_of_other_columns_fails(project: pio.Project, servers: FileServers) -> None:
    """A glob whose files do not share their columns fails the snapshot with invalid_source."""
    odd = servers.files_root / "mixed"
    odd.mkdir(exist_ok=True)
    (odd / "a.csv").write_text("id,value\n1,10\n")
    (odd / "b.csv").write_text("id,other\n2,20\n")
    connector = make_connector(project, "local", servers)
    source = project.create_datasource(connector, "mixed", path="mixed/*.csv")
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("mixed", datasource=source)
    assert info.value.code == "invalid_source"
    assert "b.csv" in info.value.message
    assert project.list_datasets() == []
