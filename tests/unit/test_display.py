"""How resources show themselves: one-line reprs, HTML that parses and never shows a secret, list tables."""

from __future__ import annotations

import pydoc
from html.parser import HTMLParser

import pyarrow as pa
import pytest

import previsio_sdk as pio
from previsio_sdk._display import ResourceList, human_bytes

from .payloads import (
    MockApi,
    connector_payload,
    dataset_payload,
    datasource_payload,
    export_payload,
    exporter_payload,
    job_payload,
    project_payload,
)

SECRET = "s3cr3t-Pa55word"


class Tables(HTMLParser):
    """Parses HTML into its tables (lists of rows of cell texts); fails on unbalanced table tags."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._stack: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("table", "tr", "td", "th", "div", "details", "summary", "p"):
            self._stack.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("table", "tr", "td", "th", "div", "details", "summary", "p"):
            assert self._stack and self._stack.pop() == tag, f"unbalanced </{tag}>"
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(markup: str) -> Tables:
    parser = Tables()
    parser.feed(markup)
    parser.close()
    assert not parser._stack, f"unclosed tags {parser._stack}"
    return parser


def arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize(
    ("payload", "cls", "expected"),
    [
        (
            dataset_payload(num_rows=200_000, size_bytes=10_700_000),
            pio.Dataset,
            "<Dataset 'orders_2024_01' 200,000 rows × 2 columns, 10.7 MB, 2024-05-01 12:00 UTC>",
        ),
        (
            project_payload(description="Churn"),
            pio.Project,
            "<Project 'churn' — Churn, created 2024-05-01 12:00 UTC>",
        ),
        (
            datasource_payload(table=None, request="SELECT *  FROM t"),
            pio.DataSource,
            "<DataSource 'orders' query SELECT * FROM t>",
        ),
        (exporter_payload(), pio.Exporter, "<Exporter 'scores_out' → table scores (replace)>"),
        (
            job_payload(status="running", progress_rows=1200),
            pio.Job,
            "<Job snapshot running 1,200 rows, id j1>",
        ),
        (
            export_payload(
                status="succeeded",
                rows=2000,
                destination="public.scores",
                started_at="2024-05-01T12:00:00Z",
                finished_at="2024-05-01T12:00:02.5Z",
            ),
            pio.Export,
            "<Export succeeded 2,000 rows → public.scores in 2.5 s>",
        ),
        (
            connector_payload(type="sftp", driver=None, port=22, database=None),
            pio.Connector,
            "<FileConnector 'warehouse' sftp://me@db.example.com:22, password set>",
        ),
        (
            connector_payload(
                driver="sqlite",
                host=None,
                port=None,
                username=None,
                database="/data/x.db",
                has_password=False,
            ),
            pio.Connector,
            "<SQLConnector 'warehouse' sqlite:////data/x.db>",
        ),
    ],
)
def test_every_resource_has_a_one_line_repr(
    payload: dict, cls: type, expected: str, client: pio.Client
) -> None:
    """Each resource's repr is one line: its kind, name and the few facts that tell it apart."""
    text = repr(cls.from_dict(payload, client))
    assert text == expected
    assert "\n" not in text


def test_human_sizes_use_decimal_units() -> None:
    """Sizes read as a person writes them."""
    assert [human_bytes(n) for n in (0, 999, 1234, 10_700_000, 3 * 10**12)] == [
        "0 B",
        "999 B",
        "1.2 kB",
        "10.7 MB",
        "3.0 TB",
    ]


def test_a_connector_html_shows_address_and_type_never_a_secret(client: pio.Client) -> None:
    """The connector's HTML table has its type and address; no secret (even one in options) appears."""
    connector = pio.Connector.from_dict(
        connector_payload(options={"sslmode": "require", "api_token": SECRET, "password": SECRET}), client
    )
    markup = connector._repr_html_()
    tables = parse(markup).tables
    settings = {row[0]: row[1] for row in tables[0][1:]}
    assert settings["type"] == "sql"
    assert settings["address"] == "postgresql://me@db.example.com:5432/sales"
    assert settings["password set"] == "yes"
    assert settings["option sslmode"] == "require"
    assert SECRET not in markup and SECRET not in repr(connector)


def test_a_dataset_html_shows_its_schema_and_first_rows(client: pio.Client, api: MockApi) -> None:
    """A dataset displays its schema as a table and the first rows, read with one small head request."""
    dataset = pio.Dataset.from_dict(dataset_payload(), client)
    api.add(
        "GET",
        "/datasets/d1/head",
        body=arrow_stream(pa.table({"id": [1, 2, 3], "amount": [1.5, None, 3.0]})),
        content_type="application/vnd.apache.arrow.stream",
    )
    tables = parse(dataset._repr_html_()).tables
    assert tables[0] == [["column", "type", "nullable"], ["id", "int64", "no"], ["amount", "double", "yes"]]
    assert tables[1][0] == ["id", "amount"] and len(tables[1]) == 4
    assert "n=5" in api.requests[0].url


def test_a_dataset_html_still_renders_when_rows_cannot_be_read(client: pio.Client, api: MockApi) -> None:
    """A display never raises: when the head cannot be read the schema shows with a short note."""
    dataset = pio.Dataset.from_dict(dataset_payload(), client)
    api.add("GET", "/datasets/d1/head", json={"error": {"code": "not_found", "message": "gone"}}, status=404)
    parsed = parse(dataset._repr_html_())
    assert len(parsed.tables) == 1
    assert "rows unavailable: NotFoundError" in "".join(parsed.text)


def test_a_project_html_lists_its_connectors_datasources_and_datasets(
    client: pio.Client, api: MockApi
) -> None:
    """A project displays three tables: its connectors, datasources and datasets, without secrets."""
    project = pio.Project.from_dict(project_payload(), client)
    for path, item in (
        ("/projects/p1/connectors", connector_payload()),
        ("/projects/p1/datasources", datasource_payload()),
        ("/projects/p1/datasets", dataset_payload()),
    ):
        api.add("GET", path, json={"items": [item], "total": 1, "page": 1, "page_size": 500})
    markup = project._repr_html_()
    tables = parse(markup).tables
    assert [t[1][0] for t in tables] == ["warehouse", "orders", "orders_2024_01"]
    assert tables[2][0][:3] == ["name", "rows", "columns"]


def test_lists_display_as_one_table_and_convert_to_pandas(client: pio.Client, api: MockApi) -> None:
    """list_* returns a list that shows as one HTML table, one line per item, and has to_pandas()."""
    project = pio.Project.from_dict(project_payload(), client)
    items = [dataset_payload(), dataset_payload(id="d2", name="orders_2024_02", num_rows=5)]
    api.add("GET", "/projects/p1/datasets", json={"items": items, "total": 2, "page": 1, "page_size": 500})
    datasets = project.list_datasets()
    assert isinstance(datasets, ResourceList) and isinstance(datasets, list) and len(datasets) == 2
    tables = parse(datasets._repr_html_()).tables
    assert len(tables) == 1 and [r[0] for r in tables[0][1:]] == ["orders_2024_01", "orders_2024_02"]
    assert repr(datasets).count("\n") == 1
    frame = datasets.to_pandas()
    assert list(frame["name"]) == ["orders_2024_01", "orders_2024_02"]
    assert list(frame["rows"]) == [3, 5] and list(frame["id"]) == ["d1", "d2"]


def test_html_escapes_what_the_platform_returns(client: pio.Client) -> None:
    """Names are escaped: a name holding markup is shown as text, not run as HTML."""
    source = pio.DataSource.from_dict(datasource_payload(name="<script>x</script>"), client)
    markup = source._repr_html_()
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    parse(markup)


def test_help_shows_the_documented_api_not_attrs_internals() -> None:
    """help() on a resource lists its documented methods, without attrs' generated machinery."""
    text = pydoc.render_doc(pio.Dataset, renderer=pydoc.plaintext)
    assert "to_pandas" in text and "A dataset of a project" in text
    for internal in ("__attrs_attrs__", "__getstate__", "__setstate__", "__match_args__", "_local_file"):
        assert internal not in text
    connector_help = pydoc.render_doc(pio.SQLConnector, renderer=pydoc.plaintext)
    assert "list_tables" in connector_help and "__attrs_attrs__" not in connector_help
