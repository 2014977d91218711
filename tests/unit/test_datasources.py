"""DataSources: creation from a project (table or query), listing, fetching and deletion."""

from __future__ import annotations

import pytest

import previsio_sdk as pio

from .payloads import (
    MockApi,
    assert_request,
    connector_payload,
    datasource_payload,
    error_payload,
    page_payload,
    project_payload,
)


@pytest.fixture
def project(client: pio.Client) -> pio.Project:
    return pio.Project.from_dict(project_payload(), client)


@pytest.fixture
def connector(client: pio.Client) -> pio.Connector:
    return pio.Connector.from_dict(connector_payload(), client)


def datasource_body(**overrides: object) -> dict[str, object]:
    """The JSON body create_datasource is expected to send."""
    return {
        "name": "orders",
        "connector_id": "c1",
        "path": None,
        "database": None,
        "table": None,
        "bucket": None,
        "request": None,
        "check": True,
        **overrides,
    }


class TestCreateDataSource:
    def test_is_creatable_from_a_table(
        self, project: pio.Project, connector: pio.Connector, api: MockApi
    ) -> None:
        """create_datasource(table=) posts the connector id, database, table and check to the project."""
        api.add("POST", "/projects/p1/datasources", status=201, json=datasource_payload())

        src = project.create_datasource(connector, "orders", database="sales", table="orders")
        assert_request(
            api.requests[0],
            "POST",
            "/projects/p1/datasources",
            body=datasource_body(database="sales", table="orders"),
        )
        assert isinstance(src, pio.DataSource)
        assert (src.id, src.connector_id, src.table, src.database) == ("s1", "c1", "orders", "sales")

    def test_is_creatable_from_a_request(
        self, project: pio.Project, connector: pio.Connector, api: MockApi
    ) -> None:
        """create_datasource(request=) posts the SQL query."""
        query = "SELECT * FROM orders WHERE amount > 100"
        api.add(
            "POST",
            "/projects/p1/datasources",
            status=201,
            json=datasource_payload(name="big_orders", table=None, database=None, request=query),
        )

        src = project.create_datasource(connector, "big_orders", request=query)
        assert_request(
            api.requests[0],
            "POST",
            "/projects/p1/datasources",
            body=datasource_body(name="big_orders", request=query),
        )
        assert src.request == query

    @pytest.mark.parametrize("check", [True, False])
    def test_sends_check_and_accepts_a_connector_id(
        self, project: pio.Project, api: MockApi, check: bool
    ) -> None:
        """A connector id string is accepted in place of the object, and check is sent as given."""
        api.add("POST", "/projects/p1/datasources", status=201, json=datasource_payload())

        project.create_datasource("c1", "orders", table="orders", check=check)
        assert_request(
            api.requests[0],
            "POST",
            "/projects/p1/datasources",
            body=datasource_body(table="orders", check=check),
        )

    def test_a_missing_source_raises_validation_error(
        self, project: pio.Project, connector: pio.Connector, api: MockApi
    ) -> None:
        """When the platform cannot find the table, ValidationError carries code source_not_found."""
        api.add(
            "POST",
            "/projects/p1/datasources",
            status=422,
            json=error_payload("source_not_found", "Table 'ordrs' does not exist in 'sales'."),
        )

        with pytest.raises(pio.ValidationError) as info:
            project.create_datasource(connector, "orders", table="ordrs")
        assert info.value.code == "source_not_found"


class TestListAndRetrieve:
    def test_is_listable_across_pages(self, project: pio.Project, api: MockApi) -> None:
        """list_datasource (and its alias list_datasources) follows pages and returns DataSources."""
        for _ in range(2):
            api.add(
                "GET",
                "/projects/p1/datasources",
                json=page_payload([datasource_payload(id="s1"), datasource_payload(id="s2")], total=3),
            )
            api.add(
                "GET",
                "/projects/p1/datasources",
                json=page_payload([datasource_payload(id="s3")], total=3, page=2),
            )

        for method in (project.list_datasource, project.list_datasources):
            sources = method()
            assert [s.id for s in sources] == ["s1", "s2", "s3"]
            assert all(isinstance(s, pio.DataSource) for s in sources)
        assert len(api.requests) == 4
        for number, sent in zip([1, 2, 1, 2], api.requests, strict=True):
            assert_request(
                sent, "GET", "/projects/p1/datasources", query={"page": str(number), "page_size": "500"}
            )

    def test_is_retrievable(self, client: pio.Client, api: MockApi) -> None:
        """DataSource.from_id fetches /datasources/{id}."""
        api.add("GET", "/datasources/s1", json=datasource_payload())

        src = pio.DataSource.from_id("s1", client=client)
        assert_request(api.requests[0], "GET", "/datasources/s1")
        assert (src.name, src.project_id) == ("orders", "p1")

    def test_fetches_its_connector(self, client: pio.Client, api: MockApi) -> None:
        """datasource.connector fetches the connector it reads through, as its type's class."""
        api.add("GET", "/connectors/c1", json=connector_payload())

        src = pio.DataSource.from_dict(datasource_payload(), client)
        assert isinstance(src.connector, pio.SQLConnector)
        assert_request(api.requests[0], "GET", "/connectors/c1")


class TestDelete:
    def test_is_deletable(self, client: pio.Client, api: MockApi) -> None:
        """datasource.delete() sends DELETE /datasources/{id}."""
        api.add("DELETE", "/datasources/s1", status=204)

        pio.DataSource.from_dict(datasource_payload(), client).delete()
        assert_request(api.requests[0], "DELETE", "/datasources/s1")


def test_repr_is_readable_and_hides_the_client(client: pio.Client) -> None:
    """repr of a datasource is one line, its name and what it reads, and does not show its client."""
    text = repr(pio.DataSource.from_dict(datasource_payload(), client))
    assert text == "<DataSource 'orders' table sales.orders>"
    assert "client" not in text.lower()
